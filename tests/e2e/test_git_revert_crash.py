"""A revert lost to a crash at any of its steps is finished by the next process, with one pull
request; a revert that kills the process every time is given up after a few attempts."""

import pytest

from . import kit
from .gitea import Gitea
from .test_git_revert import V1, V2, manifest
from .test_rollback import count, wait_event


def broken_release(ns: str, gitea: Gitea, tmp_path, name: str, start) -> tuple[str, object]:
    repo, creds, work = gitea.project(tmp_path, name)
    args = gitea.revert_args(creds, ns)

    def release(message: str, image: str, failure: str | None = None) -> None:
        text = manifest(ns, image, repo, failure=failure).replace('"name": "shop"', f'"name": "{name}"', 1)
        (work / "deploy" / "shop.yaml").write_text(text)
        gitea.git(work, "add", ".")
        gitea.git(work, "commit", "-q", "-m", message)
        gitea.git(work, "push", "-q", "origin", "main")
        kit.kubectl("apply", "-f", str(work / "deploy" / "shop.yaml"))

    first = start(args)
    release("v1", V1)
    kit.wait_for(lambda: kit.is_available(ns, name), 120, "v1")
    release("release 2.0.0", V2, failure="not-ready")
    return first, args


def failed_rs(ns: str, name: str) -> dict:
    """The failed release's ReplicaSet (the manifest keeps its pods labelled app=shop)."""
    return next(
        rs
        for rs in kit.replicasets(ns, "shop")
        if rs["metadata"]["ownerReferences"][0]["name"] == name and kit.image_of({"spec": rs["spec"]}) == V2
    )


@pytest.mark.slow
@pytest.mark.parametrize("step", ["revert_started", "revert_pushed", "revert_opened"])
def test_a_revert_killed_at_any_step_is_finished_once(
    step: str, namespace: str, operator_factory, gitea: Gitea, tmp_path
) -> None:
    ns, name = namespace, "crash"
    first, args = broken_release(
        ns,
        gitea,
        tmp_path,
        name,
        lambda args: operator_factory("-n", ns, extra=args, env={"AUTOROLLBACK_TEST_FAULTS": f"{step}=kill"}),
    )
    kit.wait_for(lambda: first.proc.poll() is not None, 150, f"the operator to die at {step}")
    attempts = failed_rs(ns, name)["metadata"]["annotations"]["autorollback.io/revert-attempts"]
    assert attempts.endswith(" 1")  # recorded before any Git work
    operator_factory("-n", ns, extra=args)  # a restart, or the new leader
    wait_event(ns, "RevertProposed", name=name, timeout=150)
    _, pulls = gitea.api("GET", f"/repos/forgeadmin/{name}/pulls?state=all")
    assert [p["title"] for p in pulls] == ['Revert "release 2.0.0"']
    rs = failed_rs(ns, name)
    assert (
        rs["metadata"]["annotations"]["autorollback.io/revert-pr"] == f"{rs['metadata']['name']} {pulls[0]['html_url']}"
    )
    assert count(ns, "RevertFailed", name=name) == 0 and count(ns, "RolledBack", name=name) == 1


@pytest.fixture
def unwatched(tmp_path):
    """Operators started without waiting for /readyz: a restarted one may die before it answers."""
    started: list[kit.Operator] = []

    def start(*argv: str, env: dict[str, str] | None = None) -> kit.Operator:
        started.append(kit.Operator(*argv, log_path=tmp_path / f"unwatched-{len(started)}.log", env=env))
        return started[-1]

    yield start
    for op in started:
        op.stop()


def test_a_revert_that_kills_the_operator_every_time_is_given_up(
    namespace: str, operator_factory, unwatched, gitea: Gitea, tmp_path
) -> None:
    ns, name = namespace, "doomed"
    kill = {"AUTOROLLBACK_TEST_FAULTS": "revert_started=kill"}
    op, args = broken_release(ns, gitea, tmp_path, name, lambda args: operator_factory("-n", ns, extra=args, env=kill))
    for attempt in (1, 2, 3):
        kit.wait_for(lambda: op.proc.poll() is not None, 150, f"attempt {attempt} to kill the operator")
        marks = failed_rs(ns, name)["metadata"]["annotations"]
        assert marks["autorollback.io/revert-attempts"].endswith(f" {attempt}")
        op = unwatched("-n", ns, *args, env=kill if attempt < 3 else None)
    failed = wait_event(ns, "RevertFailed", name=name, timeout=150)
    assert "started 3 times" in failed["message"]
    rs = failed_rs(ns, name)
    assert (
        rs["metadata"]["annotations"]["autorollback.io/revert-pr"]
        == f"{rs['metadata']['name']} none (attempts_exhausted)"
    )
    assert gitea.api("GET", f"/repos/forgeadmin/{name}/pulls?state=all")[1] == []
    assert op.proc.poll() is None and count(ns, "RevertFailed", name=name) == 1
