"""The DaemonSet adapter on what the v1.34 controller and API server write (workload-kinds.md §2.4, §3.6, §4)."""

import copy
import json

from autorollback import config, ledger
from autorollback.workloads import daemonset as ds
from autorollback.workloads.base import STRATEGIC_MERGE_PATCH
from autorollback.workloads.daemonset import DAEMONSETS

from factories import daemonset, ds_hash, ds_pod, ds_revision, revision_data, stored_template

V1, V2, V3 = "agent:1.0.0", "agent:2.0.0", "agent:3.0.0"
ENTRY = ledger.Entry(f"agent-{ds_hash(V2)}", f"agent-{ds_hash(V1)}", "2026-11-26T10:00:00Z", "2026-11-26T10:00:01Z")


def test_revisions_and_the_current_one() -> None:
    revs = DAEMONSETS.revisions([ds_revision(1, V1), ds_revision(2, V2)])
    assert [(r.number, r.name) for r in revs] == [(2, f"agent-{ds_hash(V2)}"), (1, f"agent-{ds_hash(V1)}")]
    assert revs[1].template == stored_template(V1, app="agent") and revs[1].available == 0
    assert DAEMONSETS.current(revs, stored_template(V1, app="agent")).number == 1
    assert DAEMONSETS.current(revs, stored_template(V3, app="agent")) is None


def test_the_update_revision_is_the_highest_numbered_once_observed() -> None:
    # a rollback to agent:1.0.0 observed: constructHistory renumbered its revision max+1
    revs = DAEMONSETS.revisions([ds_revision(3, V1), ds_revision(2, V2)])
    d = daemonset(V1, template_generation=3, generation=3)
    assert ds.update_revision(d, revs).name == f"agent-{ds_hash(V1)}"
    d["spec"]["template"] = stored_template(V3, app="agent")
    d["metadata"]["generation"] = 4  # not observed: only the template can say, and no revision holds it yet
    assert ds.update_revision(d, revs) is None
    d["spec"]["template"] = stored_template(V2, app="agent")
    assert ds.update_revision(d, revs).name == f"agent-{ds_hash(V2)}"  # not the highest-numbered


def test_a_rolling_update_stuck_on_its_first_node_is_unfinished_and_watched() -> None:
    stuck = daemonset(V2, desired=2, updated=1, available=1)
    assert DAEMONSETS.unfinished(stuck) == "agent-template-generation-2 unfinished"
    assert DAEMONSETS.rollout_in_progress(stuck) is True
    assert DAEMONSETS.completed(stuck) == ""
    # one node, updated but not available: not timed (a DaemonSet at rest with a node NotReady looks
    # the same); its pods' signals judge it while it is watched
    single = daemonset(V2, desired=1, updated=1, available=0)
    assert DAEMONSETS.unfinished(single) == "" and DAEMONSETS.completed(single) == ""


def test_a_rollout_is_complete_when_every_node_runs_the_updated_pod_available() -> None:
    done = daemonset(V2, desired=2, updated=2, available=2)
    assert DAEMONSETS.completed(done) == "agent-template-generation-2"  # no name to read: the rollout's
    assert (DAEMONSETS.unfinished(done), DAEMONSETS.rollout_in_progress(done)) == ("", False)
    ready_only = daemonset(V2, desired=2, updated=2, available=1, ready=2)  # minReadySeconds not over
    assert DAEMONSETS.completed(ready_only) == "" and DAEMONSETS.unfinished(ready_only) == ""
    unobserved = daemonset(V2, desired=2, updated=2, available=2, generation=3, observed=2)
    assert DAEMONSETS.completed(unobserved) == "" and DAEMONSETS.rollout_in_progress(unobserved) is None
    nowhere = daemonset(V2, desired=0, updated=0, available=0)  # no node to run on: proves nothing
    assert (DAEMONSETS.completed(nowhere), DAEMONSETS.unfinished(nowhere)) == ("", "")


def test_the_rollout_is_named_by_the_template_generation() -> None:
    d = daemonset(V2, template_generation=7, generation=9)
    assert DAEMONSETS.rollout_revision(d) == "7"
    assert ds.rollout(d) == "agent-template-generation-7"
    del d["metadata"]["annotations"][ds.TEMPLATE_GENERATION]
    assert (DAEMONSETS.rollout_revision(d), ds.rollout(d)) == ("", "agent-template-generation-9")


def test_on_delete_is_never_under_way() -> None:
    d = daemonset(V2, strategy="OnDelete", desired=2, updated=0, available=2)
    assert DAEMONSETS.on_delete(d) is True and DAEMONSETS.on_delete(daemonset()) is False
    assert (DAEMONSETS.unfinished(d), DAEMONSETS.rollout_in_progress(d), DAEMONSETS.completed(d)) == ("", False, "")
    unknown = daemonset(V2, strategy="SomethingNew")  # a newer API's strategy: not taken for RollingUpdate
    assert DAEMONSETS.unfinished(unknown) == ""


def test_progress_is_any_change_of_the_node_counts_or_the_generation() -> None:
    base = daemonset(V2)
    keys = (
        "observedGeneration",
        "desiredNumberScheduled",
        "updatedNumberScheduled",
        "numberReady",
        "numberAvailable",
        "numberUnavailable",
    )
    seen = {DAEMONSETS.progress(base)}
    for key in keys:
        moved = copy.deepcopy(base)
        moved["status"][key] += 1
        seen.add(DAEMONSETS.progress(moved))
    assert len(seen) == len(keys) + 1


def test_nothing_is_reported_failed_paused_or_left_over_and_the_deadline_is_the_annotation() -> None:
    d = daemonset(V2)
    assert (DAEMONSETS.failure(d), DAEMONSETS.paused(d), DAEMONSETS.left_over(d)) == (None, False, "")
    assert DAEMONSETS.deadline_seconds(d) == 600
    assert DAEMONSETS.deadline_seconds(daemonset(annotations={config.PROGRESS_DEADLINE: " 120 "})) == 120


def test_the_undo_is_kubectls_patch_with_the_precondition_and_the_ledger() -> None:
    target = DAEMONSETS.revisions([ds_revision(1, V1)])[0]
    undo = DAEMONSETS.undo_patch(daemonset(V2), target, "autorollback: rolled back", (ENTRY,))
    assert undo.content_type == STRATEGIC_MERGE_PATCH and set(undo.body) == {"metadata", "spec"}
    assert json.dumps({"spec": undo.body["spec"]}, separators=(",", ":")) == revision_data(
        stored_template(V1, app="agent")
    )
    assert undo.body["metadata"] == {
        "resourceVersion": "9012",
        "annotations": {ledger.KEY: ledger.dump((ENTRY,)), "kubernetes.io/change-cause": "autorollback: rolled back"},
    }


def test_the_pods_of_a_revision_carry_its_hash_not_its_name() -> None:
    revision = ds_revision(2, V2)
    mine = ds_pod("node-a", V2)
    pods = [ds_pod("node-b", V1), mine, ds_pod("node-c", V2, terminating=True), ds_pod("node-d", V2, owner="other")]
    assert DAEMONSETS.pods_of(revision, pods) == [mine]  # another DaemonSet's pod of the same template: not this one's
    named = copy.deepcopy(mine)
    named["metadata"]["labels"]["controller-revision-hash"] = revision["metadata"]["name"]
    assert DAEMONSETS.pods_of(revision, [named]) == []  # the full name is a StatefulSet pod's label
    unlabelled = copy.deepcopy(revision)
    del unlabelled["metadata"]["labels"]["controller-revision-hash"]
    blank = copy.deepcopy(mine)
    blank["metadata"]["labels"]["controller-revision-hash"] = ""
    assert DAEMONSETS.pods_of(unlabelled, [*pods, blank]) == []
