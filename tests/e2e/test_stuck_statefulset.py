"""A StatefulSet (OrderedReady) whose update is broken: the rollback alone leaves it stuck (Kubernetes'
"Forced rollback", kubernetes/kubernetes#67250); autorollback deletes the broken pod and the controller
converges on the restored revision with no human action. One namespace and operator per test."""

import json
import time
from pathlib import Path
from typing import Any

import pytest

from . import kit, test_status

V1, V2 = (f"registry.example/db:{v}" for v in ("1.0.0", "2.0.0"))
DEADLINE = 10  # autorollback.io/progress-deadline-seconds: the broken rollout is timed by the operator
ON = {
    "autorollback.io/enabled": "true",
    "autorollback.io/mode": "rollback",  # a StatefulSet's default is dry-run
    "autorollback.io/progress-deadline-seconds": str(DEADLINE),
}
OFF = {**ON, "autorollback.io/delete-stuck-pods": "false"}


def statefulset(
    ns: str, image: str, annotations: dict[str, str], failure: str | None = None, claims: bool = False
) -> dict[str, Any]:
    labels = {"app": "db", **({"autorollback.test/failure": failure} if failure else {})}
    container: dict[str, Any] = {"name": "db", "image": image}
    spec: dict[str, Any] = {
        "replicas": 3,
        "serviceName": "db",
        "podManagementPolicy": "OrderedReady",
        "selector": {"matchLabels": {"app": "db"}},
        "updateStrategy": {"type": "RollingUpdate"},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
    }
    if claims:
        container["volumeMounts"] = [{"name": "data", "mountPath": "/var/lib/db"}]
        spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "",
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": ns, "annotations": annotations},
        "spec": spec,
    }


def get(ns: str) -> dict[str, Any]:
    return kit.kubectl_json("-n", ns, "get", "statefulset", "db")


def pods(ns: str) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in kit.kubectl_json("-n", ns, "get", "pods", "-l", "app=db")["items"]}


def ready(pod: dict[str, Any]) -> bool:
    return kit.condition(pod, "Ready").get("status") == "True"


def revision_of(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["labels"].get("controller-revision-hash"))


def converged(ns: str) -> dict[str, Any] | None:
    """The StatefulSet once every replica is Ready on one revision, the current and the update one."""
    s = get(ns)
    st = s.get("status") or {}
    live = pods(ns)
    ok = (
        st.get("observedGeneration", 0) >= s["metadata"]["generation"]
        and st.get("updateRevision") == st.get("currentRevision")
        and st.get("readyReplicas") == st.get("updatedReplicas") == st.get("replicas") == 3
        and sorted(live) == ["db-0", "db-1", "db-2"]
        and all(ready(p) and revision_of(p) == st["updateRevision"] for p in live.values())
        and not any(p["metadata"].get("deletionTimestamp") for p in live.values())
    )
    return s if ok else None


def rolled_back(ns: str) -> dict[str, Any]:
    """The StatefulSet once the rollback is observed by its controller: V1's template again, the ledger
    entry, updateRevision the restored revision."""

    def check() -> dict[str, Any] | None:
        s = get(ns)
        entries = json.loads(s["metadata"].get("annotations", {}).get("autorollback.io/rollbacks") or "[]")
        st = s.get("status") or {}
        image = s["spec"]["template"]["spec"]["containers"][0]["image"]
        observed = st.get("observedGeneration", 0) >= s["metadata"]["generation"]
        return (
            s if entries and image == V1 and observed and st.get("updateRevision") == entries[0]["restored"] else None
        )

    return kit.wait_for(check, 120, "the rollback to V1, observed by the StatefulSet controller")


def broken_update(
    ns: str, annotations: dict[str, str], claims: bool = False, v1: str | None = None
) -> tuple[dict[str, Any], str]:
    """V1 converges; V2 never becomes Ready at db-2, the controller stops there (OrderedReady), and
    autorollback rolls the template back. Returns the StatefulSet then and the failed pod's uid.
    v1: the failure label of V1's pods (tests/README.md), e.g. slow-start."""
    kit.apply(statefulset(ns, V1, annotations, failure=v1, claims=claims))
    kit.wait_for(lambda: converged(ns), 120, "V1 converged")
    time.sleep(2)  # the operator sees the completion (V1 known healthy)
    kit.apply(statefulset(ns, V2, annotations, failure="not-ready", claims=claims))

    def stuck_on_v2() -> dict[str, Any] | None:
        p = pods(ns).get("db-2")
        s = get(ns)
        failed = s["status"].get("updateRevision")
        return p if p and revision_of(p) == failed and failed != s["status"].get("currentRevision") else None

    broken = kit.wait_for(stuck_on_v2, 60, "db-2 on V2 (not Ready)")
    assert not ready(broken)
    return rolled_back(ns), broken["metadata"]["uid"]


@pytest.mark.slow
def test_a_broken_ordered_ready_update_is_rolled_back_and_converges(namespace: str, operator_factory) -> None:
    ns = namespace
    operator_factory("-n", ns)
    s, broken_uid = broken_update(ns, ON)
    (entry,) = json.loads(s["metadata"]["annotations"]["autorollback.io/rollbacks"])

    done = kit.wait_for(lambda: converged(ns), 120, "every replica Ready on the restored revision, no human action")
    assert done["status"]["currentRevision"] == entry["restored"]
    assert pods(ns)["db-2"]["metadata"]["uid"] != broken_uid  # recreated by the controller at V1
    assert all(p["spec"]["containers"][0]["image"] == V1 for p in pods(ns).values())
    deleted = kit.wait_for(lambda: kit.event(ns, "db", "StuckPodsDeleted"), 30, "the StuckPodsDeleted Event")
    assert deleted["type"] == "Normal" and deleted["involvedObject"]["kind"] == "StatefulSet"
    assert "db-2" in deleted["message"] and entry["failed"] in deleted["message"]
    assert "data the failed version wrote to the volumes is still there" in deleted["message"]
    reasons = kit.reasons(ns, "db")
    assert reasons.count("StuckPodsDeleted") == 1 and "RollbackAbandoned" not in reasons


@pytest.mark.slow
def test_restored_pods_that_fail_too_abandon_it_once(namespace: str, operator_factory, tmp_path: Path) -> None:
    """The pod recreated at the restored revision does not become Ready either (as when the old version
    cannot run on what the new one left): RollbackAbandoned once, recorded, and that pod is left alone."""
    ns = namespace
    operator_factory("-n", ns)
    # V1's pods become Ready ~8 s after they start: db-2 recreated at V1 is made to fail before it is
    # Ready (once the restored revision completed, the rollback is finished and a later failure of
    # its pods is no longer this rollback's: decision.stuck)
    s, broken_uid = broken_update(ns, ON, v1="slow-start")
    (entry,) = json.loads(s["metadata"]["annotations"]["autorollback.io/rollbacks"])

    def recreated() -> dict[str, Any] | None:
        p = pods(ns).get("db-2")
        return p if p and p["metadata"]["uid"] != broken_uid and revision_of(p) == entry["restored"] else None

    again = kit.wait_for(recreated, 60, "db-2 recreated at the restored revision", 0.2)
    assert not ready(again)
    kit.kubectl("-n", ns, "label", "pod", "db-2", "--overwrite", "autorollback.test/failure=not-ready")  # fails too
    gone = kit.wait_for(lambda: kit.event(ns, "db", "RollbackAbandoned"), 30 + DEADLINE, "RollbackAbandoned")
    assert gone["type"] == "Warning" and "db-2" in gone["message"]
    assert "not deleting any more pods of the failed revision" in gone["message"]
    restored = kit.kubectl_json("-n", ns, "get", "controllerrevision", entry["restored"])
    mark = restored["metadata"]["annotations"]["autorollback.io/stuck-pods"]
    assert mark == f"abandoned {entry['failed']} {entry['failure']}"
    # `autorollback status` (read-only) says so, in the row and on the restored revision (kubectl's sts/db)
    reader = test_status.read_only(ns, tmp_path / "reader.kubeconfig")
    assert test_status.rows(reader, ns)["db"]["state"] == "abandoned"
    detail = test_status.status(reader, "-n", ns, "sts/db").stdout
    assert "State:         abandoned" in detail and f"stuck-pods={mark}" in detail, detail
    time.sleep(2 * DEADLINE)
    assert kit.reasons(ns, "db").count("RollbackAbandoned") == 1
    assert kit.reasons(ns, "db").count("StuckPodsDeleted") == 1
    assert pods(ns)["db-2"]["metadata"]["uid"] == again["metadata"]["uid"]  # never deleted


@pytest.mark.slow
def test_turned_off_by_annotation_it_stays_stuck_until_a_person_deletes_the_pod(
    namespace: str, operator_factory
) -> None:
    """The mechanism's red: the same broken update with autorollback.io/delete-stuck-pods: "false"."""
    ns = namespace
    operator_factory("-n", ns)
    _, broken_uid = broken_update(ns, OFF)
    time.sleep(3 * DEADLINE)  # far longer than the controller needs once the pod is gone
    s, p = get(ns), pods(ns)["db-2"]
    assert p["metadata"]["uid"] == broken_uid and not ready(p)  # still the broken V2 pod: stuck
    assert revision_of(p) != s["status"]["updateRevision"] and s["status"]["updatedReplicas"] == 2
    assert "StuckPodsDeleted" not in kit.reasons(ns, "db")

    kit.kubectl("-n", ns, "delete", "pod", "db-2", "--wait=false")  # the documented manual repair
    kit.wait_for(lambda: converged(ns), 120, "converged once a person deleted the pod")


@pytest.fixture
def volumes(namespace: str):
    """Three PersistentVolumes pre-bound to the claims db's volumeClaimTemplates make (claimRef), no
    StorageClass: the PV controller binds them, as a statically provisioned cluster does."""
    names = [f"{namespace}-data-{i}"[:63] for i in range(3)]
    for i, name in enumerate(names):
        kit.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name, "labels": {"autorollback.test/namespace": namespace}},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "hostPath": {"path": f"/tmp/autorollback-test/{name}"},
                    "claimRef": {"namespace": namespace, "name": f"data-db-{i}"},
                },
            }
        )
    yield names
    kit.kubectl("delete", "pv", *names, "--wait=false", check=False)


@pytest.mark.slow
def test_claims_bound_to_pre_created_volumes_converge_and_stay_untouched(
    namespace: str, operator_factory, volumes: list[str]
) -> None:
    ns = namespace
    operator_factory("-n", ns)
    kit.apply(statefulset(ns, V1, ON, claims=True))
    kit.wait_for(lambda: converged(ns), 120, "V1 converged on its volumes")

    def claims() -> dict[str, tuple[str, str, str]]:
        items = kit.kubectl_json("-n", ns, "get", "pvc")["items"]
        return {
            c["metadata"]["name"]: (c["metadata"]["uid"], c["spec"]["volumeName"], c["status"]["phase"]) for c in items
        }

    def pvs() -> dict[str, tuple[str, str, str, str]]:
        out = {}
        for v in volumes:
            pv = kit.kubectl_json("get", "pv", v)
            ref = pv["spec"]["claimRef"]
            out[v] = (
                pv["metadata"]["uid"],
                pv["metadata"]["resourceVersion"],
                ref.get("uid", ""),
                pv["status"]["phase"],
            )
        return out

    before_claims = claims()
    assert {name: (vol, phase) for name, (_, vol, phase) in before_claims.items()} == {
        f"data-db-{i}": (volumes[i], "Bound") for i in range(3)
    }
    before_pvs = pvs()
    assert {phase for *_, phase in before_pvs.values()} == {"Bound"}

    kit.apply(statefulset(ns, V2, ON, failure="not-ready", claims=True))
    kit.wait_for(
        lambda: (p := pods(ns).get("db-2")) and revision_of(p) == get(ns)["status"]["updateRevision"] and not ready(p),
        60,
        "db-2 on V2, not Ready",
    )
    rolled_back(ns)
    kit.wait_for(lambda: converged(ns), 120, "converged on the restored revision, on the same volumes")
    assert kit.event(ns, "db", "StuckPodsDeleted") is not None
    assert claims() == before_claims  # the same claims (uids), bound to the same volumes
    assert pvs() == before_pvs  # the volumes not written to at all (resourceVersion), still bound to those claims
    claim_of = {
        n: next(v["persistentVolumeClaim"]["claimName"] for v in p["spec"]["volumes"] if v["name"] == "data")
        for n, p in pods(ns).items()
    }
    assert claim_of == {f"db-{i}": f"data-db-{i}" for i in range(3)}
