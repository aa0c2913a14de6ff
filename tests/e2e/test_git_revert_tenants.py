"""Tenants are adversaries: a namespace reverts only where the platform's rules let it, and learns
nothing about any other repository (a real Gitea with one private organisation per team)."""

import json
import sys
import uuid
from pathlib import Path

import pytest

from . import kit
from .gitea import Gitea
from .test_rollback import wait_event

V1, V2 = "registry.example/shop:1.0.0", "registry.example/shop:2.0.0"


@pytest.fixture
def teams():
    """Three namespaces with short names (Gitea organisations are named after them)."""
    suffix = uuid.uuid4().hex[:6]
    names = [f"{t}-{suffix}" for t in ("ta", "tb", "tc")]
    for ns in names:
        kit.kubectl("create", "namespace", ns)
    yield names
    for ns in names:
        kit.kubectl("delete", "namespace", ns, "--wait=false", check=False)


class Clone:
    def __init__(self, gitea: Gitea, tmp: Path, owner: str, name: str):
        self.gitea, self.url = gitea, gitea.create_repo(name, owner)
        self.work = tmp / f"{owner}-{name}"
        self.work.mkdir()
        gitea.git(self.work, "init", "-q", "-b", "main")
        gitea.git(self.work, "remote", "add", "origin", self.url)

    def commit(self, message: str, text: str) -> str:
        (self.work / "deploy").mkdir(exist_ok=True)
        (self.work / "deploy" / "app.yaml").write_text(text)
        self.gitea.git(self.work, "add", ".")
        self.gitea.git(self.work, "commit", "-q", "-m", message)
        self.gitea.git(self.work, "push", "-q", "origin", "main")
        return self.gitea.git(self.work, "rev-parse", "HEAD").strip()


def manifest(ns: str, name: str, image: str, repo: str, failure: str | None = None, mode: str = "rollback") -> dict:
    m = kit.deployment(
        name,
        image=image,
        failure=failure,
        progress_deadline=15,
        annotations={
            "autorollback.io/enabled": "true",
            "autorollback.io/git-revert": "true",
            "autorollback.io/mode": mode,
            "autorollback.io/git-repo": repo,
            "autorollback.io/git-path": "deploy/app.yaml",
            "autorollback.io/git-provider": "gitea",
        },
    )
    m["metadata"]["namespace"] = ns
    return m


def test_a_namespace_reverts_only_where_the_platform_lets_it(
    teams, operator_factory, gitea: Gitea, tmp_path: Path
) -> None:
    a, b, c = teams
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / gitea.credential_key).write_text(gitea.token)  # one token that can write everywhere
    pattern = f"http://127.0.0.1:{gitea.port}/{{namespace}}/*"
    op = operator_factory(
        "-n",
        a,
        "-n",
        b,
        "-n",
        c,
        extra=(
            "--git-credentials-dir",
            str(creds),
            "--git-allowed-repo",
            f"ta-*={pattern}",
            "--git-allowed-repo",
            f"tb-*={pattern}",
        ),
    )
    own, theirs = Clone(gitea, tmp_path, a, "app"), Clone(gitea, tmp_path, b, "app")
    own.commit("release 1.0.0", json.dumps(manifest(a, "own", V1, own.url)))
    theirs.commit("release 1.0.0", json.dumps(manifest(b, "app", V1, theirs.url)))
    secret = theirs.commit("team b's confidential release", json.dumps(manifest(b, "app", V2, theirs.url)))
    own_bad = own.commit("release 2.0.0", json.dumps(manifest(a, "own", V2, own.url)))
    dots = f"http://127.0.0.1:{gitea.port}/{a}/../{b}/app.git"
    cases = {  # Deployment -> (namespace, repository it names, mode)
        "own": (a, own.url, "rollback"),
        "thief": (a, theirs.url, "rollback"),  # another team's repository
        "dots": (a, dots, "rollback"),  # the review's bypass of a string pattern
        "peek": (a, theirs.url, "dry-run"),  # would read another team's history
        "norule": (c, f"http://127.0.0.1:{gitea.port}/{c}/app.git", "rollback"),
    }
    for name, (ns, repo, mode) in cases.items():
        kit.apply(manifest(ns, name, V1, repo, mode=mode))
    for name, (ns, repo, mode) in cases.items():
        kit.wait_for(lambda: kit.is_available(ns, name), 120, f"{name} v1")
        kit.apply(manifest(ns, name, V2, repo, failure="not-ready", mode=mode))

    proposed = wait_event(a, "RevertProposed", name="own", timeout=150)
    assert own_bad[:12] in proposed["message"]
    refused = {
        name: wait_event(cases[name][0], "RevertNotProposed", name=name, timeout=150)["message"]
        for name in ("thief", "dots", "peek", "norule")
    }
    assert f"is not among the repositories namespace {a} may revert in" in refused["thief"]
    assert "is not a plain clone URL" in refused["dots"]
    assert "no rule allows Git reverts from namespace" in refused["norule"]
    assert "--git-allowed-repo" in refused["norule"] and "gitRevert.allowedRepos" in refused["norule"]
    # team b's repository: nothing pushed, nothing opened, nothing told about it
    _, branches = gitea.api("GET", f"/repos/{b}/app/branches")
    assert [x["name"] for x in branches] == ["main"]
    assert gitea.api("GET", f"/repos/{b}/app/pulls?state=all")[1] == []
    told = json.dumps([kit.events(a, name) for name in ("thief", "dots", "peek")]) + op.output()
    assert secret[:7] not in told and "confidential" not in told
    assert kit.event(a, "peek", "RevertPlanned") is None
    # the refusals are decided, not retried: recorded on the failed ReplicaSet
    failed = next(rs for rs in kit.replicasets(a, "thief") if kit.image_of({"spec": rs["spec"]}) == V2)
    assert failed["metadata"]["annotations"]["autorollback.io/revert-pr"] == (
        f"{failed['metadata']['name']} none (repo_not_allowed)"
    )


def test_an_old_style_rule_is_refused_at_start_with_the_new_form(tmp_path: Path) -> None:
    out = kit.run(
        sys.executable,
        "-m",
        "autorollback",
        "run",
        "-A",
        "--git-allowed-repo",
        "https://git.example.com/*",
        check=False,
    )
    assert out.returncode == 2
    assert "NAMESPACE=URL" in out.stderr and "{namespace}" in out.stderr
