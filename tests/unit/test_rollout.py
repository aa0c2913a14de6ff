from autorollback import rollout
from factories import deployment, template


def test_failure_is_read_from_the_progressing_condition() -> None:
    f = rollout.failure(deployment(failed=True, revision=5, since="2026-11-26T10:00:00Z"))
    assert f == rollout.Failure(5, "ProgressDeadlineExceeded", 'ReplicaSet "web-x" has timed out progressing.',
                                "2026-11-26T10:00:00Z")


def test_no_failure_while_a_newer_generation_is_not_observed() -> None:
    d = deployment(failed=True)
    d["metadata"]["generation"] = 3  # someone changed the spec after the failure
    assert rollout.failure(d) is None


def test_other_progressing_states_are_not_failures() -> None:
    d = deployment()
    d["status"]["conditions"] = [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]
    assert rollout.failure(d) is None
    d["status"]["conditions"] = [{"type": "Progressing", "status": "Unknown", "reason": "DeploymentPaused"}]
    assert rollout.failure(d) is None
    assert rollout.failure({"metadata": {"generation": 1}}) is None  # no status yet


def test_complete() -> None:
    assert rollout.complete(deployment(complete=True))
    d = deployment(complete=True)
    d["status"]["replicas"] = 4  # old pods still terminating
    assert not rollout.complete(d)
    assert not rollout.complete(deployment(failed=True))


def test_revision_rules() -> None:
    assert rollout.revision_of({"metadata": {}}) == 0
    assert rollout.revision_of({"metadata": {"annotations": {rollout.REVISION: "x"}}}) is None
    assert rollout.revision_of({"metadata": {"annotations": {rollout.REVISION: "7"}}}) == 7


def test_images() -> None:
    t = template("a:1")
    t["spec"]["containers"].append({"name": "b", "image": "b:2"})
    assert rollout.images(t) == "a:1, b:2"
