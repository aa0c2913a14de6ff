"""Killed (SIGKILL) at each step of a rollback, then started again: every failure is rolled back
exactly once (counted in ReplicaSet revisions and change-causes), and its record ends up complete."""

import collections

import pytest

from . import kit
from .test_rollback import ON, V1, V2, available, by_name

FAST = {**ON, "autorollback.io/fail-on": "CrashLoopBackOff"}


@pytest.mark.parametrize(
    ("point", "annotations", "deadline"),
    [
        ("before_patch", ON, 10),
        ("after_patch", ON, 10),
        ("after_events", ON, 10),
        ("after_patch", FAST, 600),
        ("after_events", FAST, 600),  # a fast failure, the same guarantees
    ],
)
def test_killed_at_each_step_rolls_back_exactly_once(
    namespace: str, operator_factory, point: str, annotations: dict, deadline: int
) -> None:
    ns = namespace
    first = operator_factory("-n", ns, env={"AUTOROLLBACK_TEST_FAULTS": f"{point}=kill"})
    kit.release(ns, "web", V1, annotations=annotations, progress_deadline=deadline)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="crash", annotations=annotations, progress_deadline=deadline)
    kit.wait_for(lambda: first.proc.poll() is not None, 90, f"the operator to die at {point}")
    operator_factory("-n", ns)  # started again
    d = available(ns, V1, 3)
    causes = [
        rs["metadata"].get("annotations", {}).get("kubernetes.io/change-cause", "") for rs in kit.replicasets(ns, "web")
    ]
    assert sum(c.startswith("autorollback: rolled back") for c in causes) == 1
    assert kit.revision(d) == 3 and len(kit.replicasets(ns, "web")) == 2  # one rollback, ReplicaSet reused
    bad = next(
        name
        for name, ann in by_name(ns).items()
        if "2.0.0" in str(next(rs for rs in kit.replicasets(ns, "web") if rs["metadata"]["name"] == name)["spec"])
    )
    kit.wait_for(
        lambda: by_name(ns)[bad].get("autorollback.io/outcome", "").startswith(f"{bad} success"),
        60,
        "the failed revision's marks",
    )
    assert "RolledBack" in kit.reasons(ns, "web")


def test_a_rollback_whose_answer_is_lost_is_rolled_back_and_reported_once(namespace: str, operator_factory) -> None:
    # The patch went through, its answer did not (a timeout under load): the work is tried again,
    # and must see the rollback it already made, not decide on the failure as it was.
    ns = namespace
    op = operator_factory("-n", ns, env={"AUTOROLLBACK_TEST_FAULTS": "after_patch=lost"})
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="crash", annotations=ON)
    available(ns, V1, 3)
    kit.wait_for(lambda: "RolledBack" in kit.reasons(ns, "web"), 60, "the RolledBack Event")
    kit.wait_for(
        lambda: any(
            a.get("autorollback.io/outcome", "").split(" ", 1)[-1].startswith("success") for a in by_name(ns).values()
        ),
        60,
        "the failed revision's marks",
    )
    reasons = collections.Counter(kit.reasons(ns, "web"))
    assert (reasons["RolloutFailed"], reasons["RolledBack"]) == (1, 1), reasons
    assert not {"RollbackImpossible", "RollbackAbandoned", "RollbackFailed", "KnownBadTemplate"} & set(reasons), reasons
    assert kit.revision(kit.get_deployment(ns, "web")) == 3 and len(kit.replicasets(ns, "web")) == 2
    assert any(
        line.get("event") == "API error, will try again" and "injected fault at after_patch" in line["error"]
        for line in op.lines()
    )  # the patch's own error path, as a timeout takes it
    assert op.metric("autorollback_api_errors_total", operation="failure", code="0") >= 1
