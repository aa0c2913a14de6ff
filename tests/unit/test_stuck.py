"""decision.stuck: the StatefulSet left stuck by its rollback (OrderedReady, a broken pod of the failed
revision), on objects shaped as the v1.34 controller, kubelet and API server write them."""

from typing import Any

from autorollback import config, history, ledger, state
from autorollback.decision import stuck
from autorollback.vocab import Job

from factories import STS_UID, statefulset, stored_template, sts_name, sts_pod

V1, V2, V3 = "app:1.0.0", "app:2.0.0", "app:3.0.0"
ENTRY = ledger.Entry(
    sts_name(V2), sts_name(V1), "2026-11-26T10:05:00Z", "2026-11-26T10:05:01Z", "ProgressDeadlineExceeded", 2, 4
)


def pod(ordinal: int, image: str, ready: bool, *, phase: str = "Running", **kw: Any) -> dict[str, Any]:
    """A full pod as the API server returns it (not the metadata-only list): its Ready condition."""
    p = sts_pod(ordinal, image, **kw)
    p["kind"], p["apiVersion"] = "Pod", "v1"
    p["metadata"]["resourceVersion"] = str(900 + ordinal)
    state = "True" if ready else "False"
    p["status"] = {
        "phase": phase,
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": state, **({} if ready else {"reason": "ContainersNotReady"})},
            {"type": "ContainersReady", "status": state},
            {"type": "PodScheduled", "status": "True"},
        ],
    }
    return p


def rolled_back(*, observed: bool = True, entries: tuple[ledger.Entry, ...] = (ENTRY,), **kw: Any) -> dict[str, Any]:
    """The StatefulSet after autorollback restored V1 over a broken V2 rollout that stopped at web-2:
    the template is V1's again, updateRevision is V1's, web-2 (V2) is not Ready and holds the controller."""
    annotations = {"autorollback.io/mode": "rollback", ledger.KEY: ledger.dump(entries), **kw.pop("annotations", {})}
    args: dict[str, Any] = {"current": V1, "update": V1, "updated": 2, "ready": 2, "generation": 5}
    args.update(kw)
    sts = statefulset(V1, annotations=annotations, observed=None if observed else 4, **args)
    return sts


STUCK = [pod(0, V1, True), pod(1, V1, True), pod(2, V2, False)]


def template_of(image: str) -> dict[str, Any]:
    return stored_template(image)


def names(finish: stuck.Finish) -> list[str]:
    return [p.name for p in finish.delete]


def test_the_broken_pod_of_the_failed_revision_is_deleted_once_the_rollback_is_observed() -> None:
    f = stuck.finish(rolled_back(), STUCK)
    assert f.entry == ENTRY
    assert f.delete == (stuck.Pod("web-2", "pod-web-2", "902", 2),)  # uid and resourceVersion: the preconditions
    assert not f.abandon and f.waiting == ()


def test_nothing_before_the_controller_observed_the_rollback() -> None:
    assert stuck.finish(rolled_back(observed=False), STUCK).delete == ()
    not_yet = rolled_back(update=V2)  # observed, but updateRevision still the failed one
    assert stuck.finish(not_yet, STUCK).entry is None and stuck.finish(not_yet, STUCK).delete == ()


def test_nothing_without_a_rollback_in_the_statefulsets_own_ledger() -> None:
    assert stuck.finish(rolled_back(entries=()), STUCK).delete == ()
    odd = rolled_back()
    odd["metadata"]["annotations"][ledger.KEY] = "not json"
    assert stuck.finish(odd, STUCK).delete == ()


def test_nothing_once_the_template_changed_after_the_rollback() -> None:
    # someone deployed V3 after the rollback: updateRevision is no longer the restored revision
    later = rolled_back(update=V3, generation=6)  # the deploy after the rollback's (5)
    later["spec"]["template"]["spec"]["containers"][0]["image"] = V3
    assert stuck.finish(later, [*STUCK, pod(2, V3, False)]).delete == ()


def test_a_restored_revision_the_controller_created_again_under_a_new_name_is_the_one_finished() -> None:
    # V1's revision was written by Kubernetes 1.33: restoring it, the 1.34 controller compares bytes and
    # creates an equal revision under another name (a scale since changes nothing)
    renamed = rolled_back(generation=6)
    renamed["status"]["updateRevision"] = renamed["status"]["currentRevision"] = "web-6b9d7c5f4"
    again = pod(1, V1, False)
    again["metadata"]["labels"]["controller-revision-hash"] = "web-6b9d7c5f4"
    pods = [pod(0, V1, True), again, pod(2, V2, False)]
    assert state.stuck_key(renamed)  # not at rest: its revisions are read
    assert stuck.finish(renamed, pods).entry is None  # not known to be the same template
    same = (template_of(V1), template_of(V1))
    f = stuck.finish(renamed, pods, templates=same)
    assert f.entry == ENTRY and names(f) == ["web-2"] and f.waiting == ("web-1",)
    marks = {history.HEALTHY_AT: "web-6b9d7c5f4 revision 3 generation 6"}  # its completion, bound to its name
    assert stuck.finish(renamed, pods, restored_marks=marks, templates=same).entry is None
    # a template deployed after the rollback is another revision, whatever its name
    assert stuck.finish(renamed, pods, templates=(template_of(V3), template_of(V1))).entry is None


def test_a_statefulset_at_rest_under_another_revision_has_nothing_to_finish() -> None:
    # a deploy after the rollback completed: nothing to read, whatever the ledger says
    later = rolled_back(update=V3, current=V3, updated=3, ready=3, generation=6)
    assert state.stuck_key(later) == ""


def test_only_the_newest_rollback_is_finished() -> None:
    older = ledger.Entry(sts_name(V3), sts_name(V2), "2026-11-25T10:00:00Z", "2026-11-25T10:00:01Z", "X", 1, 2)
    f = stuck.finish(rolled_back(entries=(ENTRY, older)), STUCK)
    assert f.entry == ENTRY and names(f) == ["web-2"]
    # the newest restored another revision than the one the template is on now: nothing
    assert stuck.finish(rolled_back(entries=(older, ENTRY)), STUCK).delete == ()


def test_ready_pods_of_the_failed_revision_are_left_to_the_controller() -> None:
    # V2's web-2 became Ready, web-1 did not: only web-1 holds the controller (it replaces web-2 itself)
    pods = [pod(0, V1, True), pod(1, V2, False), pod(2, V2, True)]
    assert names(stuck.finish(rolled_back(), pods)) == ["web-1"]


def test_every_stuck_pod_highest_ordinal_first() -> None:
    pods = [pod(0, V2, False), pod(1, V2, False, phase="Pending"), pod(2, V2, False)]
    assert names(stuck.finish(rolled_back(), pods)) == ["web-2", "web-1", "web-0"]


def test_pods_below_the_partition_are_never_deleted() -> None:
    pods = [pod(0, V2, False), pod(1, V2, False), pod(2, V2, False)]
    assert names(stuck.finish(rolled_back(partition=2), pods)) == ["web-2"]
    assert names(stuck.finish(rolled_back(partition=3), pods)) == []


def test_the_partition_counts_from_the_first_ordinal() -> None:
    # spec.ordinals.start 5: the controller's index is ordinal - 5, which the partition is compared with
    sts = rolled_back(partition=1)
    sts["spec"]["ordinals"] = {"start": 5}
    pods = [pod(5, V2, False), pod(6, V2, False), pod(7, V2, False)]
    assert names(stuck.finish(sts, pods)) == ["web-7", "web-6"]


def test_terminating_pods_and_pods_of_others_are_never_deleted() -> None:
    pods = [
        pod(2, V2, False, terminating=True),  # already going (the controller's or someone's delete)
        pod(1, V2, False, owner="another-uid"),  # another workload's (overlapping selector)
        pod(0, V1, True),
    ]
    assert stuck.finish(rolled_back(), pods).delete == ()
    orphan = pod(2, V2, False)
    orphan["metadata"]["ownerReferences"] = []  # released by the controller: not its to recreate
    assert stuck.finish(rolled_back(), [orphan]).delete == ()


def test_only_pods_named_as_the_controller_names_them() -> None:
    impostor = pod(2, V2, False)
    impostor["metadata"]["name"] = "web-canary"
    leading_zero = pod(2, V2, False)
    leading_zero["metadata"]["name"] = "web-02"
    other_set = pod(2, V2, False)
    other_set["metadata"]["name"] = "webby-2"
    assert stuck.finish(rolled_back(), [impostor, leading_zero, other_set]).delete == ()


def test_pods_of_other_revisions_are_never_deleted() -> None:
    pods = [pod(0, V1, False), pod(1, V3, False), pod(2, V1, False)]
    assert stuck.finish(rolled_back(), pods).delete == ()


def test_nothing_unless_opted_in_with_mode_rollback() -> None:
    dry = rolled_back()
    del dry["metadata"]["annotations"]["autorollback.io/mode"]  # a StatefulSet's default: dry-run
    assert stuck.finish(dry, STUCK).delete == ()
    assert stuck.finish(rolled_back(annotations={"autorollback.io/mode": "dry-run"}), STUCK).delete == ()
    assert stuck.finish(rolled_back(annotations={"autorollback.io/enabled": "false"}), STUCK).delete == ()


def test_nothing_for_on_delete() -> None:
    f = stuck.finish(rolled_back(strategy="OnDelete"), STUCK)
    assert f.delete == () and f.entry is None and "OnDelete" in f.why


def test_off_by_annotation_or_by_the_operator() -> None:
    off = rolled_back(annotations={stuck.ANNOTATION: "false"})
    assert stuck.finish(off, STUCK).delete == ()
    assert stuck.finish(rolled_back(annotations={stuck.ANNOTATION: " False "}), STUCK).delete == ()
    assert stuck.finish(rolled_back(), STUCK, default=False).delete == ()
    # "true" does not override the operator's "off"; any other value leaves the default
    assert stuck.finish(rolled_back(annotations={stuck.ANNOTATION: "true"}), STUCK, default=False).delete == ()
    assert names(stuck.finish(rolled_back(annotations={stuck.ANNOTATION: "no"}), STUCK)) == ["web-2"]


def test_restored_pods_not_ready_are_timed_and_abandoned_at_the_deadline() -> None:
    # web-2 was deleted and came back at V1, and V1 does not become Ready either (e.g. on data V2 migrated)
    pods = [pod(0, V1, True), pod(1, V1, True), pod(2, V1, False)]
    sts = rolled_back(updated=3)
    waiting = stuck.finish(sts, pods, not_ready_seconds=59, deadline_seconds=60)
    assert not waiting.abandon and waiting.waiting == ("web-2",) and waiting.delete == ()
    assert waiting.progress == f"{ENTRY.id} ready=2"
    gone = stuck.finish(sts, pods, not_ready_seconds=60, deadline_seconds=60)
    assert gone.abandon and gone.delete == () and gone.abandon_mark == f"abandoned {ENTRY.id}"


def test_a_rollback_whose_restored_revision_completed_since_is_finished_for_good() -> None:
    # months later a restored pod is not Ready (its node went away): not this rollback's business
    assert ENTRY.generation == 4
    pods = [pod(0, V1, True), pod(1, V1, True), pod(2, V1, False)]
    sts = rolled_back(updated=3)
    completed = {history.HEALTHY_AT: f"{ENTRY.restored} revision 3 generation 5"}
    done = stuck.finish(sts, pods, restored_marks=completed, not_ready_seconds=6000, deadline_seconds=60)
    assert done.entry is None and not done.abandon and done.delete == ()
    # a healthy mark from before the rollback, or bound to another revision, finishes nothing
    for marks in (
        {history.HEALTHY_AT: f"{ENTRY.restored} revision 1 generation 2"},
        {history.HEALTHY_AT: f"{ENTRY.failed} revision 3 generation 5"},
    ):
        assert stuck.finish(sts, pods, restored_marks=marks, not_ready_seconds=6000, deadline_seconds=60).abandon


def test_an_abandoned_rollback_deletes_nothing_more_and_is_told_once() -> None:
    # a restored pod (web-1) failed, and web-2 of the failed revision is still there: it stays
    pods = [pod(0, V1, True), pod(1, V1, False), pod(2, V2, False)]
    assert stuck.finish(rolled_back(), pods, not_ready_seconds=600).abandon
    assert stuck.finish(rolled_back(), pods, not_ready_seconds=600).delete == ()
    marks = {stuck.MARK: f"abandoned {ENTRY.id}"}
    again = stuck.finish(rolled_back(), pods, restored_marks=marks)
    assert again.abandoned_before and not again.abandon and again.delete == ()
    # a mark of another rollback (copied, forged) abandons nothing
    other = stuck.finish(rolled_back(), pods, restored_marks={stuck.MARK: "abandoned web-x 2026"})
    assert names(other) == ["web-2"]


def test_progress_of_the_restored_pods_is_a_new_state() -> None:
    one = stuck.finish(rolled_back(), [pod(0, V1, False), pod(1, V1, False), pod(2, V2, False)])
    two = stuck.finish(rolled_back(), [pod(0, V1, True), pod(1, V1, False), pod(2, V2, False)])
    assert one.progress != two.progress and two.progress.endswith("ready=1")
    assert stuck.finish(rolled_back(), STUCK).progress == ""  # every restored pod Ready: nothing timed


def test_a_pod_is_ready_only_with_the_ready_condition_true() -> None:
    assert stuck.ready(pod(0, V1, True)) and not stuck.ready(pod(0, V1, False))
    assert not stuck.ready({"metadata": {}}) and not stuck.ready({"metadata": {}, "status": {"conditions": ["x"]}})


def test_messages_name_the_pods_and_the_caveat() -> None:
    f = stuck.finish(rolled_back(), STUCK)
    assert f.entry is not None
    text = stuck.deleted_message(rolled_back(), f.entry, f.delete)
    assert "web-2" in text and sts_name(V2) in text and sts_name(V1) in text
    assert "data the failed version wrote" in text and stuck.ANNOTATION in text
    gone = stuck.abandoned_message(rolled_back(), ENTRY, ("web-2",), 60)
    assert "web-2" in gone and "60s" in gone


def test_uid_of_the_statefulset_is_required() -> None:
    sts = rolled_back()
    sts["metadata"]["uid"] = ""
    assert stuck.finish(sts, STUCK).delete == ()
    assert STS_UID in str(STUCK[2]["metadata"]["ownerReferences"])


# --- the job (state.Remembered.jobs)


def remembered(sts: dict[str, Any]) -> tuple[state.Remembered, set[Job]]:
    from autorollback.workloads.statefulset import STATEFULSETS

    memo = state.Remembered("ns", "web", adapter=STATEFULSETS)
    return memo, memo.observe(sts, config.parse(sts["metadata"]["annotations"], "StatefulSet"))


def test_the_job_runs_once_per_state_of_an_observed_rollback() -> None:
    memo, jobs = remembered(rolled_back())
    assert Job.STUCK in jobs
    state.RememberedUpdate(stuck_done=state.stuck_key(rolled_back())).apply(memo)
    cfg = config.parse(rolled_back()["metadata"]["annotations"], "StatefulSet")
    assert Job.STUCK not in memo.jobs(rolled_back(), cfg)
    recreated = rolled_back(updated=3, ready=3)  # the controller recreated web-2 at V1: look again
    assert Job.STUCK in memo.jobs(recreated, cfg)


def test_no_job_without_an_observed_rollback_or_with_the_feature_off() -> None:
    assert Job.STUCK not in remembered(rolled_back(observed=False))[1]
    assert Job.STUCK not in remembered(rolled_back(entries=()))[1]
    assert Job.STUCK not in remembered(rolled_back(annotations={stuck.ANNOTATION: "false"}))[1]
    off = rolled_back()
    off["metadata"]["annotations"]["autorollback.io/enabled"] = "false"
    assert Job.STUCK not in remembered(off)[1]


def test_no_job_for_a_deployment() -> None:
    from autorollback.workloads.deployment import DEPLOYMENTS

    from factories import deployment

    d = deployment()
    memo = state.Remembered("ns", "d", adapter=DEPLOYMENTS)
    assert Job.STUCK not in memo.observe(d, config.parse(d["metadata"].get("annotations")))


# --- the requests (kube.Client), against a recording client


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any, Any]] = []

    def request(self, method: str, path: str, body: Any = None, query: Any = None, **_: Any) -> Any:
        self.sent.append((method, path, body, query))
        return {"items": [pod(2, V2, False)]}


def test_a_pod_is_deleted_gracefully_and_only_as_it_was_read() -> None:
    from autorollback import kube

    r = Recorder()
    kube.Client.delete_pod(r, "ns", "web-2", "pod-web-2", "902")  # type: ignore[arg-type]
    (method, path, body, query) = r.sent[0]
    assert (method, path, query) == ("DELETE", "/api/v1/namespaces/ns/pods/web-2", None)
    # no gracePeriodSeconds (the pod's own), no propagation override, never forced
    assert body == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": "pod-web-2", "resourceVersion": "902"},
    }


def test_pods_are_listed_whole_by_the_selector() -> None:
    from autorollback import kube

    r = Recorder()
    assert kube.Client.pods_full(r, rolled_back()) == [pod(2, V2, False)]  # type: ignore[arg-type]
    assert r.sent == [("GET", "/api/v1/namespaces/ns/pods", None, {"labelSelector": "app=web"})]
