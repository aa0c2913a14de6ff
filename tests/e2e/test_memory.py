"""Memory follows the opted-in Deployments (issue 15): kopf lists the Deployments in pages and ends a
Deployment's worker as soon as its event is handled, and nothing is kept for a Deployment that does
not opt in. None of it may cost a decision: a failure in the last page of the first list is handled,
and an opt-out and the opt-in again are noticed from the latest state. (The memory itself is measured
by `make bench`, scenarios scale and memory: a number that depends on the machine is no test.)"""

import json
import time

import pytest

from autorollback import runner

from . import kit

V1, V2 = "registry.example/app:1", "registry.example/app:2"
ON = {"autorollback.io/enabled": "true"}


def rolled_back(ns: str, name: str) -> dict | None:
    d = kit.get_deployment(ns, name)
    return d if kit.image_of(d) == V1 and "RolledBack" in kit.reasons(ns, name) else None


@pytest.mark.slow
def test_a_failure_in_the_last_page_of_the_first_list_is_handled(namespace: str, operator_factory) -> None:
    ns = namespace
    others = []
    for i in range(2 * runner.LIST_PAGE):  # names sort before "web": it comes in the third page
        d = kit.deployment(f"other-{i:03d}", image=V1, replicas=0, annotations={})
        d["metadata"]["namespace"] = ns
        others.append(d)
    kit.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": others}))
    kit.release(ns, "web", V1, annotations=ON, replicas=1)
    kit.wait_for(lambda: kit.is_available(ns, "web"), 120, "web v1 available")
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON, replicas=1)
    kit.wait_for(lambda: kit.is_failed(ns, "web"), 120, "the deadline to pass while no operator runs")

    op = operator_factory("-n", ns)
    kit.wait_for(lambda: rolled_back(ns, "web"), 60, "the rollback")
    assert op.metric("autorollback_watch_events_total") >= len(others) + 1  # every page was listed
    assert sorted(kit.reasons(ns, "web")) == ["RolledBack", "RolloutFailed"]


@pytest.mark.slow
def test_an_opt_out_and_the_opt_in_again_are_noticed_from_the_latest_state(namespace: str, operator_factory) -> None:
    ns = namespace
    operator_factory("-n", ns)
    kit.release(ns, "web", V1, annotations=ON, replicas=1)
    kit.wait_for(lambda: kit.is_available(ns, "web"), 120, "web v1 available")
    kit.kubectl("-n", ns, "annotate", "deployment/web", "autorollback.io/enabled-")
    time.sleep(20 * runner.WORKER_IDLE)  # kopf's worker for web has ended: the next event starts a new one
    kit.release(ns, "web", V2, failure="not-ready", annotations={"example.com/team": "shop"}, replicas=1)
    kit.wait_for(lambda: kit.is_failed(ns, "web"), 120, "the deadline")
    time.sleep(3)  # watch events of the failure, handled (or not) by now
    assert kit.image_of(kit.get_deployment(ns, "web")) == V2 and kit.reasons(ns, "web") == []  # never touched

    kit.kubectl("-n", ns, "annotate", "deployment/web", "autorollback.io/enabled=true")
    kit.wait_for(lambda: rolled_back(ns, "web"), 60, "the rollback once opted in again")
    assert sorted(kit.reasons(ns, "web")) == ["RolledBack", "RolloutFailed"]
