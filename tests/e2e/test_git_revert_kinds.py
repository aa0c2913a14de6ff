"""Roll forward through Git for StatefulSets and DaemonSets: the rollback of either kind opens the revert
pull request of the commit that broke its manifest (found on its own path, not another file's newer
commit of the same image), and names the kind; a StatefulSet in dry-run only plans it."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from . import kit, test_status
from .gitea import USER, Gitea
from .test_workload_kinds import (
    DEADLINE,
    ENABLED,
    FAILURE,
    V1,
    V2,
    daemonset,
    event,
    marked_healthy,
    rolled_out,
    statefulset,
)

PATH = "deploy/web.yaml"


@pytest.fixture(scope="module")
def gitea(tmp_path_factory: pytest.TempPathFactory):
    g = Gitea(tmp_path_factory.mktemp("gitea"))
    yield g
    g.stop()


def manifest(kind: str, ns: str, repo: str, image: str, mode: str | None) -> str:
    annotations = {
        ENABLED: "true",
        DEADLINE: "10",
        "autorollback.io/git-revert": "true",
        "autorollback.io/git-repo": repo,
        "autorollback.io/git-path": PATH,
        "autorollback.io/git-provider": "gitea",
        **({"autorollback.io/mode": mode} if mode else {}),
    }
    w: dict[str, Any] = copy.deepcopy((statefulset if kind == "statefulset" else daemonset)(ns, annotations))
    template = w["spec"]["template"]
    template["spec"]["containers"][0]["image"] = image
    if image == V2:  # the bad release: KWOK never makes its pods Ready
        template["metadata"]["labels"][FAILURE] = "not-ready"
    return json.dumps(w, indent=2) + "\n"


@pytest.mark.parametrize(
    ("kind", "mode"), [("statefulset", "rollback"), ("daemonset", None), ("statefulset", None)], ids=str
)
def test_the_rollback_of_a_statefulset_or_daemonset_opens_the_revert_of_its_commit(
    kind: str, mode: str | None, namespace: str, operator_factory, gitea: Gitea, tmp_path: Path
) -> None:
    ns, name = namespace, f"{kind}-{mode or 'default'}"
    repo, creds, work = gitea.project(tmp_path, name)
    (work / "apps").mkdir()

    def commit(message: str, files: dict[str, str]) -> str:
        for path, text in files.items():
            (work / path).write_text(text)
        gitea.git(work, "add", ".")
        gitea.git(work, "commit", "-q", "-m", message)
        gitea.git(work, "push", "-q", "origin", "main")
        return gitea.git(work, "rev-parse", "HEAD").strip()

    operator_factory("-n", ns, extra=gitea.revert_args(creds, ns))
    commit("start", {PATH: manifest(kind, ns, repo, V1, mode), "apps/other.yaml": f"image: {V1}\n"})
    kit.kubectl("apply", "-f", str(work / PATH))
    kit.wait_for(lambda: rolled_out(ns, kind, V1), 90, f"{kind} on V1")
    kit.wait_for(lambda: marked_healthy(ns, V1), 60, "V1 marked healthy")
    bad = commit("release web 2.0.0", {PATH: manifest(kind, ns, repo, V2, mode)})
    commit("release other 2.0.0", {"apps/other.yaml": f"image: {V2}\n"})  # newer, same image, another file
    kit.kubectl("apply", "-f", str(work / PATH))
    kind_name = {"statefulset": "StatefulSet", "daemonset": "DaemonSet"}[kind]

    if kind == "statefulset" and mode is None:  # dry-run, a StatefulSet's default: planned, nothing written
        planned = event(ns, "RevertPlanned", timeout=120)
        assert planned["involvedObject"]["kind"] == kind_name
        assert bad[:12] in planned["message"] and f"autorollback/revert-{bad[:12]}-onto-main" in planned["message"]
        _, branches = gitea.api("GET", f"/repos/{USER}/{name}/branches")
        _, pulls = gitea.api("GET", f"/repos/{USER}/{name}/pulls?state=all")
        assert [b["name"] for b in branches] == ["main"] and pulls == []
        assert kit.image_of(kit.kubectl_json("-n", ns, "get", kind, "web")) == V2
        assert "RevertProposed" not in kit.reasons(ns, "web") and "RolledBack" not in kit.reasons(ns, "web")
        reader = test_status.read_only(ns, tmp_path / "reader.kubeconfig")
        row = test_status.rows(reader, ns)["web"]
        assert (row["kind"], row["mode"], row["state"]) == (kind_name, "dry-run", "failed"), row
        return

    event(ns, "RolledBack", timeout=120)
    proposed = event(ns, "RevertProposed", timeout=120)
    assert proposed["involvedObject"]["kind"] == kind_name
    _, pulls = gitea.api("GET", f"/repos/{USER}/{name}/pulls?state=open")
    assert len(pulls) == 1
    pr = pulls[0]
    assert pr["html_url"] in proposed["message"] and bad[:12] in proposed["message"]
    assert pr["head"]["ref"] == f"autorollback/revert-{bad[:12]}-onto-main" and pr["base"]["ref"] == "main"
    assert pr["title"] == 'Revert "release web 2.0.0"'
    assert f"autorollback rolled {kind_name} **{ns}/web** back" in pr["body"] and V2 in pr["body"] and V1 in pr["body"]
    _, files = gitea.api("GET", f"/repos/{USER}/{name}/pulls/{pr['number']}/files")
    assert [f["filename"] for f in files] == [PATH]  # its own manifest, not the other file's newer V2
    _, head = gitea.api("GET", f"/repos/{USER}/{name}/git/commits/{pr['head']['sha']}")
    assert f"This reverts commit {bad}." in head["commit"]["message"]
    assert f"autorollback rolled {kind_name} {ns}/web back" in head["commit"]["message"]
    marks = [
        (cr["metadata"].get("annotations") or {}).get("autorollback.io/revert-pr", "")
        for cr in kit.kubectl_json("-n", ns, "get", "controllerrevisions", "-l", "app=web")["items"]
    ]
    assert len([m for m in marks if m.endswith(" " + pr["html_url"])]) == 1  # on the failed ControllerRevision
    kit.wait_for(lambda: rolled_out(ns, kind, V1), 120, f"{kind} back on V1")
    assert kit.reasons(ns, "web").count("RolledBack") == 1
    # `autorollback status` (read-only) shows it: rolled back, the revert proposed, by kind and name
    reader = test_status.read_only(ns, tmp_path / "reader.kubeconfig")
    row = kit.wait_for(lambda: test_status.rows(reader, ns).get("web"), 30, "web's status row")
    assert (row["kind"], row["state"], row["revert_pr"]) == (kind_name, "rolled back", pr["html_url"]), row
    detail = test_status.status(reader, "-n", ns, f"{kind}/web").stdout
    assert f"Revert PR:     {pr['html_url']}" in detail, detail
