from autorollback import history, kube, ledger
from autorollback.workloads import deployment as deployments
from autorollback.workloads.base import JSON_PATCH, Undo

from factories import deployment, replicaset, rs_name

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ENTRY = ledger.Entry("web-bad", "web-good", "2026-11-26T10:00:00Z", "2026-11-26T10:00:01Z")


def target(**annotations: str):
    return deployments.revisions([replicaset(1, "app:1.0.0", annotations=annotations)])[0]


def test_kubectl_rules_for_annotations() -> None:
    dep = {
        LAST_APPLIED: "{dep}",
        "deployment.kubernetes.io/revision": "5",
        "team": "dep-only",
        "kubernetes.io/change-cause": "v2",
    }
    rs = {
        LAST_APPLIED: "{rs}",
        "deployment.kubernetes.io/revision": "4",
        "deployment.kubernetes.io/desired-replicas": "3",
        "team": "rs-value",
        "kubernetes.io/change-cause": "v1",
        "only.rs/key": "x",
    }
    assert deployments.kubectl_annotations(dep, rs) == {
        LAST_APPLIED: "{dep}",
        "deployment.kubernetes.io/revision": "5",  # the Deployment's skip-list values
        "team": "rs-value",
        "kubernetes.io/change-cause": "v1",
        "only.rs/key": "x",  # the rest from the ReplicaSet
    }


def test_keeps_user_config_drops_marks_and_writes_the_ledger() -> None:
    name = rs_name("app:1.0.0")
    dep = {
        "autorollback.io/enabled": "true",
        "autorollback.io/mode": "rollback",
        "x": "dep",
        history.HEALTHY_AT: history.bind("web-other", "t"),  # leaked onto the Deployment by a kubectl undo
        ledger.KEY: "[]",
    }
    t = target(
        **{
            "autorollback.io/enabled": "false",
            history.HEALTHY_AT: history.bind(name, "t"),
            history.FAILED_AT: history.bind(name, "t"),
            ledger.KEY: "[old copy]",
            "x": "rs",
        }
    )
    out = deployments.annotations(dep, t, "why", (ENTRY,))
    assert out == {
        "autorollback.io/enabled": "true",
        "autorollback.io/mode": "rollback",
        "x": "rs",
        ledger.KEY: ledger.dump((ENTRY,)),
        "kubernetes.io/change-cause": "why",
    }


def test_patch_is_one_conditional_json_patch() -> None:
    d = deployment()
    ops = deployments.patch(d, target(), "cause", (ENTRY,))
    assert ops[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "42"}
    assert ops[1]["path"] == "/spec/template"
    assert "pod-template-hash" not in ops[1]["value"]["metadata"]["labels"]
    assert ops[1]["value"]["spec"]["containers"][0]["image"] == "app:1.0.0"
    assert ops[2]["path"] == "/metadata/annotations" and ops[2]["value"]["kubernetes.io/change-cause"] == "cause"


def test_the_undo_is_that_patch_sent_as_a_json_patch() -> None:
    d = deployment()
    undo = deployments.DEPLOYMENTS.undo_patch(d, target(), "cause", (ENTRY,))
    assert undo == Undo(JSON_PATCH, deployments.patch(d, target(), "cause", (ENTRY,)))
    sent: list[tuple] = []

    class Client:
        def patch_deployment(self, namespace, name, body, content_type="application/json-patch+json"):
            sent.append((namespace, name, body, content_type))
            return {}

    kube.DeploymentApi(Client()).undo("ns", "web", undo)  # type: ignore[arg-type]
    assert sent == [("ns", "web", undo.body, JSON_PATCH)]


def test_the_template_is_written_as_it_was_read() -> None:
    # fields no client model knows survive: the template is plain JSON end to end
    t = target()
    t.template["spec"]["futureField"] = {"x": [1, None, "y"]}
    t.template["spec"]["containers"][0]["futureContainerField"] = True
    ops = deployments.patch(deployment(), t, "cause", ())
    assert ops[1]["value"]["spec"]["futureField"] == {"x": [1, None, "y"]}
    assert ops[1]["value"]["spec"]["containers"][0]["futureContainerField"] is True
