"""The operator's rollback equals `kubectl rollout undo --to-revision=N` on the same history."""

import json

from . import kit

V1, V2 = "registry.example/web:1.0.0", "registry.example/web:2.0.0"
OURS = ("autorollback.io/",)
BREAK = {
    "spec": {
        "template": {
            "metadata": {"labels": {"autorollback.test/failure": "not-ready"}},
            "spec": {"containers": [{"name": "app", "image": V2}]},
        }
    }
}


def comparable(d: dict) -> tuple[dict, dict]:
    annotations = {
        k: v
        for k, v in d["metadata"]["annotations"].items()
        if not k.startswith(OURS) and k != "kubernetes.io/change-cause"
    }
    return d["spec"]["template"], annotations


def test_operator_rollback_equals_kubectl_undo(new_namespace, operator_factory) -> None:
    ours, theirs = new_namespace(), new_namespace()
    for ns in (ours, theirs):
        manifest = kit.deployment("web", image=V1)
        manifest["metadata"] = {
            "name": "web",
            "namespace": ns,
            "annotations": {"team.example/owner": "payments", "kubernetes.io/change-cause": "v1"},
        }
        manifest["spec"]["template"]["metadata"]["annotations"] = {"example.com/scrape": "true"}
        kit.kubectl("create", "-f", "-", input=json.dumps(manifest))
    kit.kubectl("-n", ours, "annotate", "deployment/web", "autorollback.io/enabled=true")
    operator_factory("-n", ours)
    for ns in (ours, theirs):
        kit.wait_for(lambda: kit.is_available(ns, "web"), 90, f"revision 1 in {ns}")
        kit.kubectl(
            "-n",
            ns,
            "annotate",
            "--overwrite",
            "deployment/web",
            "kubernetes.io/change-cause=v2",
            "team.example/owner=checkout",
        )
        kit.kubectl("-n", ns, "patch", "deployment/web", "--type=strategic", "-p", json.dumps(BREAK))

    kit.wait_for(lambda: kit.is_failed(theirs, "web"), 90, "the rollout to fail")
    kit.kubectl("-n", theirs, "rollout", "undo", "deployment/web", "--to-revision=1")

    results = []
    for ns in (ours, theirs):
        d = kit.wait_for(
            lambda: d if (d := kit.is_available(ns, "web")) and kit.revision(d) == 3 else None,
            120,
            f"revision 3 in {ns}",
        )
        results.append(comparable(d))
    assert results[0] == results[1]
    template, annotations = results[0]
    assert template["spec"]["containers"][0]["image"] == V1
    assert annotations["team.example/owner"] == "checkout"
    assert template["metadata"]["annotations"] == {"example.com/scrape": "true"}
