"""Roll forward through Git, end to end: a GitOps-style sync applies the manifest from a real Gitea,
a bad commit is rolled back, autorollback opens the revert pull request, merging it brings Git and
the cluster back into agreement, with no second rollback."""

import json
from pathlib import Path

import pytest

from . import kit, test_dashboard as dashboard, test_status
from .gitea import Gitea
from .prometheus import Exporter, Prometheus
from .test_rollback import count, wait_event

V1, V2 = "registry.example/shop:1.0.0", "registry.example/shop:2.0.0"


def manifest(ns: str, image: str, repo: str, failure: str | None = None, mode: str = "rollback") -> str:
    m = kit.deployment(
        "shop",
        image=image,
        failure=failure,
        progress_deadline=20,
        annotations={
            "autorollback.io/enabled": "true",
            "autorollback.io/git-revert": "true",
            "autorollback.io/mode": mode,
            "autorollback.io/git-repo": repo,
            "autorollback.io/git-path": "deploy/shop.yaml",
            "autorollback.io/git-provider": "gitea",
        },
    )
    m["metadata"]["namespace"] = ns
    return json.dumps(m, indent=2) + "\n"


def test_a_rollback_opens_the_revert_and_merging_it_converges(
    namespace: str, operator_factory, gitea: Gitea, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ns = namespace
    repo = gitea.create_repo("shop")
    creds = tmp_path / "credentials"
    (creds / gitea.credential_key).mkdir(parents=True)
    (creds / gitea.credential_key / "token").write_text(gitea.token + "\n")
    work = tmp_path / "work"
    work.mkdir()
    gitea.git(work, "init", "-q", "-b", "main")
    gitea.git(work, "remote", "add", "origin", repo)
    (work / "deploy").mkdir()
    (work / "README.md").write_text("shop\n")
    gitea.git(work, "add", ".")
    gitea.git(work, "commit", "-q", "-m", "start")

    def commit(message: str, content: str) -> None:
        (work / "deploy" / "shop.yaml").write_text(content)
        gitea.git(work, "add", ".")
        gitea.git(work, "commit", "-q", "-m", message)
        gitea.git(work, "push", "-q", "origin", "main")

    def sync() -> None:  # what Argo CD self-heal or Flux does: apply the base branch as it is now
        gitea.git(work, "pull", "-q", "--ff-only", "origin", "main")
        kit.kubectl("apply", "-f", str(work / "deploy" / "shop.yaml"))

    op = operator_factory("-n", ns, extra=gitea.revert_args(creds, ns))
    # the dashboard's revert panels, below: a Prometheus of this test's own (the worker's keeps what it
    # scraped, and the other dashboard test expects no revert in its window)
    prometheus = Prometheus(tmp_path / "prometheus", Exporter())
    request.addfinalizer(prometheus.close)
    prometheus.scrape("autorollback", f"127.0.0.1:{op.metrics_port}")
    commit("release shop 1.0.0", manifest(ns, V1, repo))
    sync()
    kit.wait_for(lambda: kit.is_available(ns, "shop"), 120, "v1")
    commit("release shop 2.0.0", manifest(ns, V2, repo, failure="not-ready"))
    bad = gitea.git(work, "rev-parse", "HEAD").strip()
    sync()
    wait_event(ns, "RolledBack", name="shop")
    proposed = wait_event(ns, "RevertProposed", name="shop", timeout=120)
    status, pulls = gitea.api("GET", "/repos/forgeadmin/shop/pulls?state=open")
    assert status == 200 and len(pulls) == 1
    pr = pulls[0]
    assert pr["html_url"] in proposed["message"] and bad[:12] in proposed["message"]
    assert pr["head"]["ref"] == f"autorollback/revert-{bad[:12]}-onto-main" and pr["base"]["ref"] == "main"
    assert pr["title"] == 'Revert "release shop 2.0.0"'
    assert V2 in pr["body"] and V1 in pr["body"] and "ProgressDeadlineExceeded" in pr["body"]
    failed_rs = next(rs for rs in kit.replicasets(ns, "shop") if kit.image_of({"spec": rs["spec"]}) == V2)
    assert failed_rs["metadata"]["annotations"]["autorollback.io/revert-pr"] == (
        f"{failed_rs['metadata']['name']} {pr['html_url']}"
    )
    _, commits = gitea.api("GET", f"/repos/forgeadmin/shop/git/commits/{pr['head']['sha']}")
    assert f"This reverts commit {bad}." in commits["commit"]["message"]  # git revert's own line
    # `autorollback status` (read-only) shows the revert proposed: the table row and the detail view
    reader = test_status.read_only(ns, tmp_path / "reader.kubeconfig")
    row = kit.wait_for(lambda: test_status.rows(reader, ns).get("shop"), 30, "shop's status row")
    assert (row["state"], row["revert_pr"]) == ("rolled back", pr["html_url"]), row
    table = test_status.status(reader, "-n", ns).stdout.splitlines()
    assert table[1].split()[1] == "deployment/shop" and table[1].endswith(pr["html_url"]), table
    detail = test_status.status(reader, "-n", ns, "shop").stdout
    assert f"Revert PR:     {pr['html_url']}" in detail and f"revert-pr={pr['html_url']}" in detail, detail

    # Before anyone merges, the GitOps sync puts the failed version back: the warning names the PR.
    kit.kubectl("apply", "-f", str(work / "deploy" / "shop.yaml"))
    assert (
        f"The revert pull request is open: {pr['html_url']}"
        in wait_event(ns, "KnownBadTemplate", name="shop")["message"]
    )
    status, _ = gitea.api("POST", f"/repos/forgeadmin/shop/pulls/{pr['number']}/merge", {"Do": "merge"})
    assert status == 200
    sync()  # Git says v1 again: the sync changes nothing, the cluster runs v1 already
    d = kit.wait_for(lambda: kit.is_available(ns, "shop"), 60, "shop available")
    assert kit.image_of(d) == V1 and V1 in (work / "deploy" / "shop.yaml").read_text()
    assert count(ns, "RolledBack", name="shop") == 1 and count(ns, "RollbackAbandoned", name="shop") == 0
    assert count(ns, "KnownBadTemplate", name="shop") == 1 and count(ns, "RevertProposed", name="shop") == 1
    assert op.metric("autorollback_revert_prs_total", result="opened") == 1
    # the Grafana dashboard's revert panels show it: one opened, the time it took
    prometheus.wait_for_value('sum(autorollback_revert_prs_total{result="opened"})', 1, timeout=30)
    panels = {
        (title, ref): prometheus.samples(dashboard.expand(expr, ns))
        for title, ref, expr in dashboard.queries(dashboard.dashboard())
        if "revert" in title.lower()
    }
    assert set(panels) == {
        ("Revert pull requests by result", "A"),
        *(("Time to an open revert pull request", r) for r in "ABC"),
    }
    shown = {(s["result"], s.get("reason", "")): v for s, v in panels["Revert pull requests by result", "A"] if v}
    assert shown.keys() == {("opened", "")} and round(shown["opened", ""]) == 1, panels  # increase() extrapolates
    for ref in "ABC":
        assert [v > 0 for _, v in panels["Time to an open revert pull request", ref]] == [True], panels
    # the token is nowhere the operator wrote
    written = [
        op.output(),
        json.dumps(kit.events(ns, "shop")),
        json.dumps(pulls),
        json.dumps(kit.kubectl_json("-n", ns, "get", "deployments,replicasets")),
    ]
    assert not [w for w in written if gitea.token in w]


def test_dry_run_plans_the_revert_and_writes_nothing(
    namespace: str, operator_factory, gitea: Gitea, tmp_path: Path
) -> None:
    ns = namespace
    repo, creds, work = gitea.project(tmp_path, "plan")
    operator_factory("-n", ns, extra=gitea.revert_args(creds, ns))
    for message, m in (
        ("v1", manifest(ns, V1, repo, mode="dry-run")),
        ("release shop 2.0.0", manifest(ns, V2, repo, failure="not-ready", mode="dry-run")),
    ):
        (work / "deploy" / "shop.yaml").write_text(m.replace('"name": "shop"', '"name": "plan"', 1))
        gitea.git(work, "add", ".")
        gitea.git(work, "commit", "-q", "-m", message)
        gitea.git(work, "push", "-q", "origin", "main")
        kit.kubectl("apply", "-f", str(work / "deploy" / "shop.yaml"))
        if message == "v1":
            kit.wait_for(lambda: kit.is_available(ns, "plan"), 120, "v1")
    bad = gitea.git(work, "rev-parse", "HEAD").strip()
    planned = wait_event(ns, "RevertPlanned", name="plan", timeout=120)
    assert bad[:12] in planned["message"] and f"autorollback/revert-{bad[:12]}-onto-main" in planned["message"]
    _, branches = gitea.api("GET", "/repos/forgeadmin/plan/branches")
    assert [b["name"] for b in branches] == ["main"]  # nothing pushed
    _, pulls = gitea.api("GET", "/repos/forgeadmin/plan/pulls?state=all")
    assert pulls == [] and kit.image_of(kit.get_deployment(ns, "plan")) == V2


def test_a_revert_lost_to_a_crash_is_proposed_after_the_restart(
    namespace: str, operator_factory, gitea: Gitea, tmp_path: Path
) -> None:
    ns = namespace
    repo, creds, work = gitea.project(tmp_path, "crash")

    def release(message: str, image: str, failure: str | None = None) -> None:
        text = manifest(ns, image, repo, failure=failure).replace('"name": "shop"', '"name": "crash"', 1)
        (work / "deploy" / "shop.yaml").write_text(text)
        gitea.git(work, "add", ".")
        gitea.git(work, "commit", "-q", "-m", message)
        gitea.git(work, "push", "-q", "origin", "main")
        kit.kubectl("apply", "-f", str(work / "deploy" / "shop.yaml"))

    args = gitea.revert_args(creds, ns)
    first = operator_factory("-n", ns, extra=args, env={"AUTOROLLBACK_TEST_FAULTS": "after_events=kill"})
    release("v1", V1)
    kit.wait_for(lambda: kit.is_available(ns, "crash"), 120, "v1")
    release("release 2.0.0", V2, failure="not-ready")
    kit.wait_for(lambda: first.proc.poll() is not None, 120, "the operator to die right after the rollback")
    assert kit.image_of(kit.get_deployment(ns, "crash")) == V1  # the rollback itself went through
    operator_factory("-n", ns, extra=args)  # a restart (or the other replica)
    wait_event(ns, "RevertProposed", name="crash", timeout=120)
    _, pulls = gitea.api("GET", "/repos/forgeadmin/crash/pulls?state=open")
    assert [p["title"] for p in pulls] == ['Revert "release 2.0.0"']
    d = kit.wait_for(lambda: kit.is_available(ns, "crash"), 60, "crash available")
    assert kit.revision(d) == 3  # rolled back once
