from autorollback.workloads import base, deployment as deployments

from factories import UPDATED, deployment, rs_name, template


def test_failure_is_read_from_the_progressing_condition() -> None:
    f = deployments.failure(deployment(failed=True, revision=5))
    assert f == base.Failure(
        rs_name("app:2.0.0"),
        "ProgressDeadlineExceeded",
        f'ReplicaSet "{rs_name("app:2.0.0")}" has timed out progressing.',
        UPDATED,
        5,
    )
    assert f.id == f"{rs_name('app:2.0.0')} {UPDATED}"


def test_failure_is_identified_by_its_update_not_its_transition() -> None:
    # False -> False transitions (ReplicaSetCreateError -> ProgressDeadlineExceeded) keep lastTransitionTime.
    a = deployments.failure(deployment(failed=True, updated="2026-11-26T10:00:00Z"))
    b = deployments.failure(deployment(failed=True, updated="2026-11-26T11:00:00Z"))
    assert a.id != b.id


def test_the_named_replicaset_is_read_from_every_progressing_message() -> None:
    assert deployments.named_replicaset('ReplicaSet "web-5d8f" has timed out progressing.') == "web-5d8f"
    assert deployments.named_replicaset('Created new replica set "web-5d8f"') == "web-5d8f"
    assert deployments.named_replicaset('Found new replica set "web-5d8f"') == "web-5d8f"
    assert deployments.named_replicaset("Deployment is paused") == ""


def test_no_failure_while_a_newer_generation_is_not_observed() -> None:
    d = deployment(failed=True)
    d["metadata"]["generation"] = 3  # someone changed the spec after the failure
    assert deployments.failure(d) is None


def test_other_progressing_states_are_not_failures() -> None:
    d = deployment()
    d["status"]["conditions"] = [
        {
            "type": "Progressing",
            "status": "True",
            "reason": "ReplicaSetUpdated",
            "message": 'ReplicaSet "web-1" is progressing.',
        }
    ]
    assert deployments.failure(d) is None and deployments.progressing_replicaset(d) == "web-1"
    d["status"]["conditions"] = [{"type": "Progressing", "status": "Unknown", "reason": "DeploymentPaused"}]
    assert deployments.failure(d) is None
    assert deployments.failure({"metadata": {"generation": 1}}) is None  # no status yet


def test_complete_names_its_replicaset() -> None:
    assert deployments.completed_replicaset(deployment(complete=True)) == rs_name("app:2.0.0")
    d = deployment(complete=True)
    d["status"]["replicas"] = 4  # old pods still terminating
    assert deployments.completed_replicaset(d) == ""
    assert deployments.completed_replicaset(deployment(failed=True)) == ""


def test_a_rollout_to_zero_replicas_proves_nothing() -> None:
    d = deployment(complete=True)
    d["spec"]["replicas"] = 0
    d["status"].update(replicas=0, updatedReplicas=0, availableReplicas=0)
    assert deployments.completed_replicaset(d) == ""


def test_revision_rules() -> None:
    assert deployments.revision_of({"metadata": {}}) == 0
    assert deployments.revision_of({"metadata": {"annotations": {deployments.REVISION: "x"}}}) is None
    assert deployments.revision_of({"metadata": {"annotations": {deployments.REVISION: "7"}}}) == 7
    # what Go's strconv.ParseInt(v, 10, 64) refuses is ignored, as the controller and kubectl ignore it
    for odd in ("1_0", " 10", "10\n", "\u0661\u0660", str(2**63), "", "+"):
        assert deployments.revision_of({"metadata": {"annotations": {deployments.REVISION: odd}}}) is None, odd
    assert deployments.revision_of({"metadata": {"annotations": {deployments.REVISION: "+8"}}}) == 8


def test_images() -> None:
    t = template("a:1")
    t["spec"]["containers"].append({"name": "b", "image": "b:2"})
    assert base.images(t) == "a:1, b:2"


def test_images_are_shown_short_and_on_one_line() -> None:
    t = template("a:1")
    t["spec"]["containers"] += [{"name": n, "image": i} for n, i in (("b", "b\n2"), ("c", "c" * 500), ("d", "d:4"))]
    shown = base.images(t)
    assert shown.startswith('a:1, "b\\n2", "ccc') and shown.endswith("(500 characters), and 1 more")
