from autorollback import history, undo
from factories import deployment, replicaset

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def target(**annotations: str):
    return history.revisions([replicaset(1, "app:1.0.0", annotations=annotations)])[0]


def test_kubectl_rules_for_annotations() -> None:
    dep = {LAST_APPLIED: "{dep}", "deployment.kubernetes.io/revision": "5", "team": "dep-only",
           "kubernetes.io/change-cause": "v2"}
    rs = {LAST_APPLIED: "{rs}", "deployment.kubernetes.io/revision": "4", "deployment.kubernetes.io/desired-replicas": "3",
          "team": "rs-value", "kubernetes.io/change-cause": "v1", "only.rs/key": "x"}
    assert undo.kubectl_annotations(dep, rs) == {
        LAST_APPLIED: "{dep}", "deployment.kubernetes.io/revision": "5",  # the Deployment's skip-list values
        "team": "rs-value", "kubernetes.io/change-cause": "v1", "only.rs/key": "x",  # the rest from the ReplicaSet
    }


def test_keeps_user_config_and_drops_marks() -> None:
    dep = {"autorollback.io/enabled": "true", "autorollback.io/mode": "rollback", "x": "dep"}
    t = target(**{"autorollback.io/enabled": "false", history.HEALTHY_AT: "t", history.FAILED_AT: "t", "x": "rs"})
    out = undo.annotations(dep, t, "why")
    assert out == {"autorollback.io/enabled": "true", "autorollback.io/mode": "rollback", "x": "rs",
                   "kubernetes.io/change-cause": "why"}


def test_patch_is_one_conditional_json_patch() -> None:
    d = deployment()
    ops = undo.patch(d, target(), "cause")
    assert ops[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "42"}
    assert ops[1]["path"] == "/spec/template"
    assert "pod-template-hash" not in ops[1]["value"]["metadata"]["labels"]
    assert ops[1]["value"]["spec"]["containers"][0]["image"] == "app:1.0.0"
    assert ops[2]["path"] == "/metadata/annotations" and ops[2]["value"]["kubernetes.io/change-cause"] == "cause"
