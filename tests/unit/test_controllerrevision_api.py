"""The I/O of the ControllerRevision kinds (kube.StatefulSetApi, kube.DaemonSetApi), against a
recording client: what is asked of the API server, and what is kept of its answers."""

from dataclasses import dataclass, field
from typing import Any

import pytest

from autorollback import config, kube
from autorollback.kube import ApiError
from autorollback.workloads.base import STRATEGIC_MERGE_PATCH, Undo

from factories import STS_UID, daemonset, ds_revision, statefulset, sts_revision

REVISIONS = "/apis/apps/v1/namespaces/ns/controllerrevisions"


@dataclass
class Recorder:
    """Client.request as the Api classes call it: each call recorded, answered from `answers` by path."""

    answers: dict[str, Any] = field(default_factory=dict)
    sent: list[tuple[str, str, Any, dict[str, Any] | None, str]] = field(default_factory=list)

    def request(self, method: str, path: str, body: Any = None, query=None, content_type="application/json", **_):
        self.sent.append((method, path, body, query, content_type))
        answer = self.answers.get(path)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def pods_of(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"metadata": {"name": "p"}}]


def test_history_is_kubectls_selector_then_controller_lookup() -> None:
    mine = sts_revision(1, "app:1.0.0")
    other = sts_revision(2, "app:2.0.0")
    other["metadata"]["ownerReferences"][0]["uid"] = "another-statefulset"
    orphan = sts_revision(3, "app:3.0.0")
    orphan["metadata"]["ownerReferences"] = []  # the controller may adopt it; kubectl does not list it
    owner_not_controller = sts_revision(4, "app:1.0.0")
    owner_not_controller["metadata"]["ownerReferences"][0]["controller"] = False
    client = Recorder({REVISIONS: {"items": [mine, other, orphan, owner_not_controller]}})
    sts = statefulset()
    sts["spec"]["selector"] = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["cache"]}],
    }
    assert kube.StatefulSetApi(client).history(sts) == [mine]  # type: ignore[arg-type]
    assert client.sent == [
        ("GET", REVISIONS, None, {"labelSelector": "app=web,tier notin (cache)"}, "application/json")
    ]


def test_each_kind_reads_and_writes_its_own_collection() -> None:
    for api, workload, path in (
        (kube.StatefulSetApi, statefulset(), "/apis/apps/v1/namespaces/ns/statefulsets/web"),
        (kube.DaemonSetApi, daemonset(), "/apis/apps/v1/namespaces/ns/daemonsets/agent"),
    ):
        client = Recorder({path: workload})
        io = api(client)  # type: ignore[arg-type]
        name = workload["metadata"]["name"]
        assert io.get("ns", name) is workload
        undo = Undo(STRATEGIC_MERGE_PATCH, {"metadata": {"resourceVersion": "1"}, "spec": {"template": {}}})
        io.undo("ns", name, undo)
        ops = [{"op": "test", "path": "/metadata/annotations/x", "value": "1"}]
        io.patch("ns", name, ops)
        assert io.pods(workload) == [{"metadata": {"name": "p"}}]
        assert client.sent == [
            ("GET", path, None, None, "application/json"),
            ("PATCH", path, undo.body, {"fieldManager": "autorollback"}, STRATEGIC_MERGE_PATCH),
            ("PATCH", path, ops, {"fieldManager": "autorollback"}, "application/json-patch+json"),
        ]


def test_a_revision_is_read_by_name_and_a_missing_one_is_none() -> None:
    found = ds_revision(1, "agent:1.0.0")
    client = Recorder(
        {
            f"{REVISIONS}/agent-6f8b4c9d7": found,
            f"{REVISIONS}/gone": ApiError(404, "NotFound", "not found"),
            f"{REVISIONS}/denied": ApiError(403, "Forbidden", "no"),
        }
    )
    io = kube.DaemonSetApi(client)  # type: ignore[arg-type]
    assert io.get_revision("ns", "agent-6f8b4c9d7") is found
    assert io.get_revision("ns", "gone") is None
    with pytest.raises(ApiError):
        io.get_revision("ns", "denied")


def test_marks_are_merged_onto_the_revision_with_an_optional_precondition() -> None:
    client = Recorder()
    io = kube.StatefulSetApi(client)  # type: ignore[arg-type]
    io.mark_revision("ns", "web-6b9f7c8d5", {"autorollback.io/healthy-at": "web-6b9f7c8d5 revision 1", "x": None})
    io.mark_revision("ns", "web-6b9f7c8d5", {"y": "1"}, "1001")
    assert client.sent == [
        (
            "PATCH",
            f"{REVISIONS}/web-6b9f7c8d5",
            {"metadata": {"annotations": {"autorollback.io/healthy-at": "web-6b9f7c8d5 revision 1", "x": None}}},
            {"fieldManager": "autorollback"},
            "application/merge-patch+json",
        ),
        (
            "PATCH",
            f"{REVISIONS}/web-6b9f7c8d5",
            {"metadata": {"resourceVersion": "1001", "annotations": {"y": "1"}}},
            {"fieldManager": "autorollback"},
            "application/merge-patch+json",
        ),
    ]


def test_both_kinds_are_registered_with_their_io() -> None:
    client = Recorder()
    assert isinstance(kube.api_for(client, "StatefulSet"), kube.StatefulSetApi)  # type: ignore[arg-type]
    assert isinstance(kube.api_for(client, "DaemonSet"), kube.DaemonSetApi)  # type: ignore[arg-type]
    assert kube.controlled_by(sts_revision(1, "app:1.0.0"), STS_UID)


def test_an_invalid_deadline_is_a_problem_that_keeps_the_default() -> None:
    problems: list[config.Problem] = []
    assert config.progress_deadline({config.PROGRESS_DEADLINE: "10m"}, problems) == 600
    assert [p.key for p in problems] == [config.PROGRESS_DEADLINE]
    assert "accepted values are a whole number of seconds from 1 to 2147483647" in problems[0].message()
    assert config.progress_deadline({config.PROGRESS_DEADLINE: "1"}, problems) == 1 and len(problems) == 1
    assert config.progress_deadline(None) == 600
    assert config.parse({config.PROGRESS_DEADLINE: "x"}).problems == ()  # a Deployment's is its own field


def test_the_watch_health_lists_every_watched_kind_in_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """kube.Client.workload_versions (the health re-list, handlers.forget_unlisted): a kind left out
    would have its opted-in workloads forgotten, and its changes never counted as missed."""

    pages = {
        "/apis/apps/v1/namespaces/ns/deployments": [{"items": [{"metadata": {"uid": "d", "resourceVersion": "1"}}]}],
        "/apis/apps/v1/namespaces/ns/statefulsets": [
            {"items": [{"metadata": {"uid": "s1", "resourceVersion": "2"}}], "metadata": {"continue": "next"}},
            {"items": [{"metadata": {"uid": "s2", "resourceVersion": "3"}}]},
        ],
        "/apis/apps/v1/namespaces/ns/daemonsets": [{"items": [{"metadata": {"uid": "a", "resourceVersion": "4"}}]}],
    }
    asked: list[tuple[str, Any]] = []

    def request(self, method: str, path: str, query=None, **_: Any) -> Any:
        asked.append((path, (query or {}).get("continue")))
        return pages[path].pop(0)

    monkeypatch.setattr(kube.Client, "request", request)
    listed = kube.Client(None, None).workload_versions(["ns"])  # type: ignore[arg-type]
    assert listed == {"d": "1", "s1": "2", "s2": "3", "a": "4"}
    assert ("/apis/apps/v1/namespaces/ns/statefulsets", "next") in asked
    asked.clear()
    pages["/apis/apps/v1/namespaces/ns/deployments"] = [{"items": [{"metadata": {"uid": "d", "resourceVersion": "5"}}]}]
    assert kube.Client(None, None).workload_versions(["ns"], ["Deployment"]) == {"d": "5"}  # type: ignore[arg-type]
    assert asked == [("/apis/apps/v1/namespaces/ns/deployments", None)]  # --kinds: the others never listed


def test_a_revisions_pods_are_listed_whole_by_the_selector_and_its_pod_label() -> None:
    client = Recorder({"/api/v1/namespaces/ns/pods": {"items": []}})
    sts = statefulset()
    assert kube.Client.pods_full(client, sts, ("controller-revision-hash", "web-abc")) == []  # type: ignore[arg-type]
    kube.Client.pods_full(client, sts)  # type: ignore[arg-type]
    queries = [q for (_, _, _, q, _) in client.sent]
    assert queries == [{"labelSelector": "app=web,controller-revision-hash=web-abc"}, {"labelSelector": "app=web"}]
