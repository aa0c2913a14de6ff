"""The platform's rules: which namespace may revert in which repository and path."""

import pytest

from autorollback.gitrevert import policy
from autorollback.gitrevert.queue import Queue

RULES = (
    policy.parse_rule("*=https://git.example.com/{namespace}/*"),
    policy.parse_rule("shop-*=https://git.example.com/platform/gitops.git paths=apps/{namespace}/** credential=ops"),
    policy.parse_rule("data=https://gitlab.example.com/data/**"),
    policy.parse_rule("local=http://127.0.0.1:3000/forgeadmin/*"),
)


def allowed(namespace: str, repo: str, path: str = "deploy/app.yaml") -> bool:
    return isinstance(policy.grant(RULES, namespace, repo, path), policy.Grant)


def test_a_namespace_reverts_in_its_own_repositories_only() -> None:
    assert allowed("team-a", "https://git.example.com/team-a/app.git")
    assert allowed("team-a", "HTTPS://GIT.Example.COM/team-a/app.git")  # scheme and host are case-blind
    assert not allowed("team-a", "https://git.example.com/team-b/app.git")
    assert not allowed("team-a", "https://git.example.com/Team-A/app.git")  # path segments are not


@pytest.mark.parametrize(
    "repo",
    [
        "https://git.example.com/team-a/../team-b/app.git",  # the review's bypass
        "https://git.example.com/team-a/./app.git",
        "https://git.example.com/team-a/%2e%2e/team-b/app.git",
        "https://git.example.com/team-a/app%2Egit",
        "https://git.example.com/team-a/app.git?x=1",
        "https://git.example.com/team-a/app.git#frag",
        "https://user@git.example.com/team-a/app.git",
        "https://user:pw@git.example.com/team-a/app.git",
        "https://git.example.com:8443/team-a/app.git",  # a port the rule does not name
        "https://git.example.com:/team-a/app.git",
        "https://git.example.com/team-a//app.git",
        "https://git.example.com/team-a/app.git/",
        "https://git.example.com/team-a/sub/app.git",  # `*` never crosses `/`
        "https://git.example.com\\@evil.example/team-a/app.git",
        "https://git.example.com./team-a/app.git",
        "https://[::1]/team-a/app.git",
        "https://git.example.com:0/team-a/app.git",
        "http://git.example.com/team-a/app.git",  # a token never crosses the network unencrypted
        "https://git.exam\u0440le.com/team-a/app.git",
        "https://git.example.com/team-a/app.git\n",
        "git@git.example.com:team-a/app.git",
        "ssh://git.example.com/team-a/app.git",
        "file:///srv/git/team-a/app.git",
    ],
)
def test_hostile_urls_match_nothing(repo: str) -> None:
    assert not allowed("team-a", repo)


def test_ports_must_be_named_by_the_rule() -> None:
    assert allowed("local", "http://127.0.0.1:3000/forgeadmin/shop.git")
    assert not allowed("local", "http://127.0.0.1:3001/forgeadmin/shop.git")
    assert not allowed("local", "http://127.0.0.1/forgeadmin/shop.git")


def test_double_star_spans_subgroups() -> None:
    assert allowed("data", "https://gitlab.example.com/data/etl/jobs/app.git")
    assert allowed("data", "https://gitlab.example.com/data/app.git")
    assert not allowed("data", "https://gitlab.example.com/datax/app.git")


def test_paths_in_a_shared_repository() -> None:
    repo = "https://git.example.com/platform/gitops.git"
    assert allowed("shop-eu", repo, "apps/shop-eu/deploy.yaml")
    assert allowed("shop-eu", repo, "apps/shop-eu")
    assert not allowed("shop-eu", repo, "apps/shop-us/deploy.yaml")
    assert not allowed("shop-eu", repo, "apps/shop-eu/../shop-us/deploy.yaml")
    assert not allowed("shop-eu", repo, "apps")
    assert not allowed("payments", repo, "apps/payments/deploy.yaml")  # only the shop-* rule names it
    assert policy.grant(RULES, "shop-eu", repo, "apps/shop-us/x.yaml").reason == "outside_paths"
    assert policy.grant(RULES, "team-a", repo, "x").reason == "repo_not_allowed"
    assert policy.grant((), "team-a", repo, "x").reason == "no_rule"
    grant = policy.grant(RULES, "shop-eu", repo, "apps/shop-eu/x.yaml")
    assert isinstance(grant, policy.Grant) and grant.credential == "ops"
    assert not grant.allows_path("apps/shop-us/x.yaml") and grant.allows_path("apps/shop-eu/a/b.yaml")


def test_a_folder_in_paths_covers_what_is_under_it() -> None:
    rules = (policy.parse_rule("t=https://git.example.com/ops/gitops.git paths=apps/{namespace} credential=bot"),)
    grant = policy.grant(rules, "t", "https://git.example.com/ops/gitops.git", "apps/t/web.yaml")
    assert isinstance(grant, policy.Grant) and grant.allows_path("apps/t") and not grant.allows_path("apps/tt/x")
    assert "credential" not in policy.grant(rules, "t", "https://git.example.com/ops/other.git", "x")  # never shown


def test_rules_add_up_for_a_namespace() -> None:
    rules = (*RULES, policy.parse_rule("team-a=https://github.com/acme/shared.git"))
    assert isinstance(policy.grant(rules, "team-a", "https://github.com/acme/shared.git", "x"), policy.Grant)
    assert isinstance(policy.grant(rules, "team-a", "https://git.example.com/team-a/a.git", "x"), policy.Grant)
    assert isinstance(policy.grant(rules, "team-b", "https://github.com/acme/shared.git", "x"), str)


def test_refusals_say_what_the_platform_must_set() -> None:
    out = policy.grant((), "team-a", "https://git.example.com/team-a/app.git", "x")
    assert isinstance(out, str) and "--git-allowed-repo" in out and "gitRevert.allowedRepos" in out
    out = policy.grant(RULES, "team-a", "https://git.example.com/team-b/app.git", "x")
    assert isinstance(out, str) and "is not among the repositories namespace team-a may revert in" in out


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("https://git.example.com/*", "rules name the namespaces"),
        ("team-a=git@github.com:a/b.git", "is not an https:// URL pattern"),
        ("team-a=https://git.example.com/a/../b", "is not an https:// URL pattern"),
        ("team-a=https://git.example.com/a/* paths=../x", "must be relative globs"),
        ("team-a=https://git.example.com/a/* color=red", "unknown option"),
        ("Team_A=https://git.example.com/a/*", "is not a glob over namespace names"),
        ("", "rules name the namespaces"),
        ("a=https://git.example.com/a/* paths=x paths=y", "given twice"),
        ("a=https://git.example.com:0/a/*", "is not an https:// URL pattern"),
    ],
)
def test_bad_rules_are_refused_with_the_form(text: str, why: str) -> None:
    with pytest.raises(policy.RuleError, match=why):
        policy.parse_rule(text)


def test_one_lock_per_repository_however_spelled() -> None:
    a = policy.parse_url("https://GIT.example.com/team-a/app.git")
    b = policy.parse_url("https://git.example.com/team-a/app")
    assert a and b and policy.lock_key(a) == policy.lock_key(b)


def test_the_queue_takes_namespaces_in_turn_and_drops_nothing() -> None:
    q = Queue(per_namespace=1)
    for i in range(5):
        assert q.put("noisy", f"noisy/{i}", i)
    assert not q.put("noisy", "noisy/0", "again")  # one job per failed ReplicaSet
    assert q.put("quiet", "quiet/0", "q")
    first = q.take(0)
    assert first == ("noisy", "noisy/0", 0)
    assert q.take(0) == ("quiet", "quiet/0", "q")  # not the noisy namespace's second
    assert q.take(0) is None  # noisy has one running: its others wait
    q.done("noisy", "noisy/0")
    taken = []
    while (job := q.take(0)) is not None:
        taken.append(job[2])
        q.done(job[0], job[1])
    assert taken == [1, 2, 3, 4]
