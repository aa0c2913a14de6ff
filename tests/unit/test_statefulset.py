"""The StatefulSet adapter on what the v1.34 controller writes (workload-kinds.md §2.2, §3.2-3.4, §4)."""

import copy
import json

from autorollback import config, history, ledger
from autorollback.workloads import controllerrevision as cr, statefulset as sts
from autorollback.workloads.base import STRATEGIC_MERGE_PATCH
from autorollback.workloads.statefulset import STATEFULSETS

from factories import revision_data, statefulset, stored_template, sts_name, sts_pod, sts_revision

V1, V2, V3 = "app:1.0.0", "app:2.0.0", "app:3.0.0"
ENTRY = ledger.Entry(sts_name(V2), sts_name(V1), "2026-11-26T10:00:00Z", "2026-11-26T10:00:01Z", "CrashLoopBackOff", 2)


def history_of(*revisions: dict) -> list[history.Revision]:
    return STATEFULSETS.revisions(list(revisions))


# --- revisions


def test_revisions_are_the_controller_revisions_newest_first() -> None:
    good = sts_revision(1, V1, healthy_at="revision 1 generation 2")
    bad = sts_revision(2, V2)
    revs = history_of(good, bad)
    assert [(r.number, r.name) for r in revs] == [(2, sts_name(V2)), (1, sts_name(V1))]
    assert revs[1].template == stored_template(V1)  # data's spec.template, without the replace directive
    assert "$patch" not in revs[1].template
    assert revs[1].healthy and revs[1].health == history.Health(1, generation=2)  # marks from its annotations
    assert revs[1].created == good["metadata"]["creationTimestamp"]
    assert revs[1].available == 0  # no status on a ControllerRevision, no per-revision count on the StatefulSet


def test_revisions_are_ordered_by_number_whatever_the_listing_order() -> None:
    listed = [sts_revision(2, V2), sts_revision(1, V1), sts_revision(3, V3)]
    assert [r.number for r in history_of(*listed)] == [3, 2, 1]


def test_a_revision_that_cannot_be_read_is_ignored() -> None:
    odd_number, odd_data, no_data = sts_revision(1, V1), sts_revision(2, V2), sts_revision(3, V3)
    odd_number["revision"] = "1"
    odd_data["data"] = {"spec": {"template": "x"}}
    del no_data["data"]
    assert history_of(odd_number, odd_data, no_data) == []
    odd_number["revision"] = True
    assert history_of(odd_number) == []
    assert (cr.revision_of(odd_number), cr.revision_of(sts_revision(7, V1)), cr.revision_of(statefulset())) == (
        None,
        7,
        0,  # a StatefulSet carries no revision number
    )


def test_the_current_revision_is_the_newest_holding_the_template() -> None:
    # revision 1 written by 1.33 (creationTimestamp: null); a rollback to it made the 1.34 controller
    # create an equal revision (the bytes differ), which is the one it uses
    old = sts_revision(1, V1, written_by_133=True)
    again = sts_revision(3, V1)
    again["metadata"]["name"] = "web-8f7b6d5c9"
    revs = history_of(old, sts_revision(2, V2), again)
    assert STATEFULSETS.current(revs, stored_template(V1)).name == "web-8f7b6d5c9"
    assert STATEFULSETS.current(revs[1:], stored_template(V1)).name == sts_name(V1)
    assert STATEFULSETS.current(revs, stored_template(V3)) is None  # not created by the controller yet


def test_templates_are_compared_semantically_not_by_bytes() -> None:
    live = stored_template(V1)
    assert STATEFULSETS.same_template(stored_template(V1, written_by_133=True), live)  # 1.33 vs 1.34 serialization
    assert STATEFULSETS.same_template({**live, "$patch": "replace"}, live)
    assert not STATEFULSETS.same_template(stored_template(V2), live)
    labelled = copy.deepcopy(live)
    labelled["metadata"]["labels"]["tier"] = "db"
    assert not STATEFULSETS.same_template(labelled, live)


def test_the_update_revision_named_by_the_status_is_authoritative_once_observed() -> None:
    revs = history_of(sts_revision(1, V1), sts_revision(2, V2))
    s = statefulset(V2)
    s["status"]["updateRevision"] = sts_name(V1)  # whatever the template comparison would say
    assert sts.update_revision(s, revs).name == sts_name(V1)
    s["metadata"]["generation"] = 5  # not observed yet: the template says
    assert sts.update_revision(s, revs).name == sts_name(V2)
    s["status"]["observedGeneration"] = 5
    s["status"]["updateRevision"] = "web-gone"  # not among the revisions read
    assert sts.update_revision(s, revs).name == sts_name(V2)


# --- the rollout, from the status


def test_a_rolling_update_stuck_at_its_first_pod_is_unfinished_and_watched() -> None:
    stuck = statefulset(V2, updated=1, ready=2)
    assert STATEFULSETS.unfinished(stuck) == f"{sts_name(V2)} unfinished"
    assert STATEFULSETS.rollout_in_progress(stuck) is True
    assert STATEFULSETS.completed(stuck) == ""
    assert STATEFULSETS.rollout_revision(stuck) == sts_name(V2)
    # the last pod updated but not Ready: currentRevision has not moved, the rollout is not over
    last = statefulset(V2, updated=3, ready=2)
    assert STATEFULSETS.unfinished(last) and STATEFULSETS.completed(last) == ""


def test_a_rollout_is_complete_when_every_pod_is_updated_ready_and_available() -> None:
    done = statefulset(V2, current=V2, updated=3, ready=3)
    assert STATEFULSETS.completed(done) == sts_name(V2)
    assert (STATEFULSETS.unfinished(done), STATEFULSETS.rollout_in_progress(done)) == ("", False)
    waiting = statefulset(V2, current=V2, updated=3, ready=3, available=2)  # minReadySeconds not over
    assert STATEFULSETS.completed(waiting) == ""
    unobserved = copy.deepcopy(done)
    unobserved["metadata"]["generation"] = 5
    assert STATEFULSETS.completed(unobserved) == "" and STATEFULSETS.rollout_in_progress(unobserved) is None
    none = statefulset(V2, current=V2, replicas=0, updated=0, ready=0)
    assert STATEFULSETS.completed(none) == ""  # ran no pod: proves nothing


def test_a_completed_rollout_that_loses_a_pod_or_scales_is_not_under_way() -> None:
    lost = statefulset(V2, current=V2, updated=3, ready=2)
    scaled = statefulset(V2, current=V2, replicas=5, created=4, updated=4, ready=3)
    for s in (lost, scaled):
        assert (STATEFULSETS.unfinished(s), STATEFULSETS.rollout_in_progress(s), STATEFULSETS.completed(s)) == (
            "",
            False,
            "",
        )


def test_a_template_restored_to_the_current_revision_is_under_way_while_other_pods_remain() -> None:
    # after the rollback the update revision is the current one again; the broken pod is still there
    restored = statefulset(V1, current=V1, created=3, updated=2, ready=2)
    assert STATEFULSETS.unfinished(restored) == f"{sts_name(V1)} unfinished"
    assert STATEFULSETS.rollout_in_progress(restored) is True


def test_restored_to_the_current_revision_under_a_partition_every_pod_must_be_on_it() -> None:
    # the bad pod at ordinal 2 (at the partition) is still there and Ready: not complete, under way
    restored = statefulset(V1, current=V1, partition=2, created=3, updated=2, ready=3)
    assert STATEFULSETS.completed(restored) == ""
    assert STATEFULSETS.unfinished(restored) == f"{sts_name(V1)} unfinished"


def test_a_partitioned_rollout_that_stopped_at_its_partition_is_complete_not_failing() -> None:
    canary = statefulset(V2, partition=2, updated=1, ready=3)  # ordinal 2 updated and Ready, 0-1 kept
    assert STATEFULSETS.completed(canary) == sts_name(V2)
    assert (STATEFULSETS.unfinished(canary), STATEFULSETS.rollout_in_progress(canary)) == ("", False)
    broken = statefulset(V2, partition=2, updated=1, ready=2)  # ordinal 2 updated, not Ready
    assert STATEFULSETS.unfinished(broken) == f"{sts_name(V2)} unfinished" and STATEFULSETS.completed(broken) == ""
    held = statefulset(V2, partition=3, updated=0, ready=3)  # no ordinal at or above the partition
    assert (STATEFULSETS.unfinished(held), STATEFULSETS.completed(held)) == ("", "")
    assert sts.partition(statefulset(partition=None)) == 0  # rollingUpdate not set: no partition
    assert STATEFULSETS.unfinished(statefulset(V2, partition=None)) == f"{sts_name(V2)} unfinished"


def test_on_delete_is_never_under_way() -> None:
    s = statefulset(V2, strategy="OnDelete", updated=0, ready=3)
    assert STATEFULSETS.on_delete(s) is True and STATEFULSETS.on_delete(statefulset()) is False
    assert (STATEFULSETS.unfinished(s), STATEFULSETS.rollout_in_progress(s), STATEFULSETS.completed(s)) == (
        "",
        False,
        "",
    )
    replaced = statefulset(V2, strategy="OnDelete", updated=3, ready=3)  # every pod deleted by hand since
    assert STATEFULSETS.completed(replaced) == sts_name(V2)


def test_an_update_revision_not_written_yet_is_no_mismatch() -> None:
    s = statefulset(V1, current=V1, updated=0, ready=0, created=1)
    s["status"] = {"observedGeneration": 4, "replicas": 1, "currentRevision": sts_name(V1)}  # a new StatefulSet
    assert (STATEFULSETS.unfinished(s), STATEFULSETS.completed(s), STATEFULSETS.rollout_revision(s)) == ("", "", "")
    assert STATEFULSETS.rollout_in_progress(s) is False


def test_progress_is_any_change_of_the_counts_or_the_generation() -> None:
    base = statefulset(V2)
    seen = {STATEFULSETS.progress(base)}
    for key in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas"):
        moved = copy.deepcopy(base)
        moved["status"][key] += 1
        seen.add(STATEFULSETS.progress(moved))
    assert len(seen) == 6
    currents = copy.deepcopy(base)
    currents["status"]["collisionCount"] = 1
    assert STATEFULSETS.progress(currents) == STATEFULSETS.progress(base)


def test_nothing_is_reported_failed_paused_or_left_over() -> None:
    s = statefulset(V2)
    s["spec"]["paused"] = True  # no such field on a StatefulSet
    assert (STATEFULSETS.failure(s), STATEFULSETS.paused(s), STATEFULSETS.left_over(s)) == (None, False, "")


def test_the_completion_token_is_the_generation_seen() -> None:
    done = statefulset(V2, current=V2, updated=3, ready=3)
    later = statefulset(V2, current=V2, updated=3, ready=3, generation=6)
    assert STATEFULSETS.completion_token(done) == "4" != STATEFULSETS.completion_token(later)


def test_the_deadline_is_the_annotation_else_600() -> None:
    assert STATEFULSETS.deadline_seconds(statefulset()) == 600
    s = statefulset(annotations={config.PROGRESS_DEADLINE: "900"})
    assert STATEFULSETS.deadline_seconds(s) == 900
    s["spec"]["progressDeadlineSeconds"] = 60  # not a StatefulSet's field
    assert STATEFULSETS.deadline_seconds(s) == 900
    for bad in ("ten", "0", "-5", "1.5", "", str(2**31)):
        assert STATEFULSETS.deadline_seconds(statefulset(annotations={config.PROGRESS_DEADLINE: bad})) == 600, bad


# --- the rollback


def test_the_undo_is_kubectls_patch_with_the_precondition_and_the_ledger() -> None:
    target = history_of(sts_revision(1, V1))[0]
    s = statefulset(V2, annotations={"kubernetes.io/change-cause": "v2", "team": "db"})
    undo = STATEFULSETS.undo_patch(s, target, "autorollback: rolled back", (ENTRY,))
    assert undo.content_type == STRATEGIC_MERGE_PATCH
    assert set(undo.body) == {"metadata", "spec"}
    # kubectl's body: the revision's data as the controller wrote it, byte for byte
    assert json.dumps({"spec": undo.body["spec"]}, separators=(",", ":")) == revision_data(stored_template(V1))
    assert undo.body["metadata"] == {
        "resourceVersion": "5678",  # the precondition
        "annotations": {ledger.KEY: ledger.dump((ENTRY,)), "kubernetes.io/change-cause": "autorollback: rolled back"},
    }


def test_the_undo_sends_a_revision_written_by_133_as_it_is_stored() -> None:
    stored = sts_revision(1, V1, written_by_133=True)
    target = history_of(stored)[0]
    undo = STATEFULSETS.undo_patch(statefulset(V2), target, "why", ())
    assert undo.body["spec"] == stored["data"]["spec"]
    assert undo.body["spec"]["template"]["metadata"]["creationTimestamp"] is None


def test_the_undo_replaces_the_whole_template_so_what_the_bad_version_added_goes() -> None:
    bad = stored_template(V2)
    bad["spec"]["nodeSelector"] = {"disk": "ssd"}
    bad["metadata"]["labels"]["canary"] = "true"
    s = statefulset(V2)
    s["spec"]["template"] = bad
    undo = STATEFULSETS.undo_patch(s, history_of(sts_revision(1, V1))[0], "why", ())
    assert undo.body["spec"]["template"]["$patch"] == "replace"  # without it a merge would keep them
    assert "nodeSelector" not in undo.body["spec"]["template"]["spec"]


# --- pods


def test_the_pods_of_a_revision_carry_its_full_name() -> None:
    revision = sts_revision(2, V2)
    mine = sts_pod(2, V2)
    pods = [sts_pod(0, V1), sts_pod(1, V1), mine, sts_pod(3, V2, terminating=True), sts_pod(4, V2, owner="other")]
    assert STATEFULSETS.pods_of(revision, pods) == [mine]
    assert mine["metadata"]["labels"][STATEFULSETS.pod_label] == revision["metadata"]["name"]
    hashed = copy.deepcopy(mine)
    hashed["metadata"]["labels"]["controller-revision-hash"] = revision["metadata"]["labels"][
        "controller.kubernetes.io/hash"
    ]
    assert STATEFULSETS.pods_of(revision, [hashed]) == []  # the hash alone is a DaemonSet pod's label
