"""The revert against a real Gitea and real pushes, case by case (no cluster needed)."""

import json
import time
from pathlib import Path

import pytest

from autorollback.gitrevert import core, forge, git

from .gitea import USER, Gitea

V1, V2 = "registry.example/shop:1.0.0", "registry.example/shop:2.0.0"
FACTS = core.RevertFacts(
    namespace="prod",
    deployment="shop",
    failed_revision=2,
    failed_images=V2,
    restored_revision=1,
    restored_images=V1,
    reason="ProgressDeadlineExceeded",
    message='ReplicaSet "shop-x" has timed out',
)


@pytest.fixture(scope="module")
def gitea(tmp_path_factory: pytest.TempPathFactory):
    g = Gitea(tmp_path_factory.mktemp("gitea"))
    yield g
    g.stop()


class Project:
    """A repository on the forge and a person's clone of it."""

    def __init__(self, gitea: Gitea, tmp: Path, name: str):
        self.gitea, self.name = gitea, name
        self.url = gitea.create_repo(name)
        self.work = tmp / "person"
        self.work.mkdir()
        gitea.git(self.work, "init", "-q", "-b", "main")
        gitea.git(self.work, "remote", "add", "origin", self.url)
        self.tmp = tmp

    def commit(self, message: str | bytes, files: dict[str, str], push: str = "HEAD:main") -> str:
        for path, text in files.items():
            (self.work / path).parent.mkdir(parents=True, exist_ok=True)
            (self.work / path).write_text(text)
        self.gitea.git(self.work, "add", ".")
        (self.tmp / "message").write_bytes(message if isinstance(message, bytes) else message.encode())
        self.gitea.git(self.work, "commit", "-q", "--allow-empty", "-F", str(self.tmp / "message"))
        self.gitea.git(self.work, "push", "-q", "origin", push)
        return self.gitea.git(self.work, "rev-parse", "HEAD").strip()

    def revert(self, path: str = "deploy/shop.yaml", commit: str = "", image: str = V2, **options) -> git.Revert:
        src = core.Source(self.url, path, "main", commit, "gitea", "annotations")
        work = self.tmp / f"op-{len(list(self.tmp.glob('op-*')))}"
        work.mkdir()
        return git.Repo(work, self.url, "autorollback", self.gitea.token).prepare(src, "main", image, FACTS, **options)

    def refused(self, reason: str, **options) -> str:
        with pytest.raises(git.NotProposed) as e:
            self.revert(**options)
        assert e.value.reason == reason, e.value
        return str(e.value)

    def api(self) -> forge.Gitea:
        return forge.Gitea(f"{self.gitea.url}/api/v1", self.gitea.token)


def manifest(image: str) -> str:
    return (
        json.dumps({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}, indent=1)
        + "\n"
    )


def branch(commit: str, base: str = "main") -> str:
    return f"autorollback/revert-{commit[:12]}-onto-{base}"


@pytest.fixture
def project(gitea: Gitea, tmp_path: Path, request: pytest.FixtureRequest) -> Project:
    return Project(gitea, tmp_path, request.node.name.replace("_", "-")[:40])


def test_opens_one_pull_request_and_a_second_try_reuses_it(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1), "deploy/other.yaml": manifest("other:1")})
    bad = project.commit("release 2.0.0", {"deploy/shop.yaml": manifest(V2)})
    project.commit("unrelated", {"README.md": "hi\n"})
    first = project.revert()
    assert (first.commit, first.existed, first.branch) == (bad, False, branch(bad))
    api = project.api()
    url = api.open(USER, project.name, first.branch, "main", core.title(first.subject), "body")
    again = project.revert()  # a restart, another replica: same branch, same content
    assert again.existed and again.branch == first.branch
    assert api.find_open(USER, project.name, again.branch, "main") == url
    assert api.open(USER, project.name, again.branch, "main", "t", "b") == url  # 409 from Gitea means "exists"
    _status, pulls = project.gitea.api("GET", f"/repos/{USER}/{project.name}/pulls?state=open")
    assert len(pulls) == 1


def test_finds_the_commit_in_a_long_history_of_several_manifests(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1), "deploy/cart.yaml": manifest("cart:1")})
    bad = project.commit("release 2.0.0", {"deploy/shop.yaml": manifest(V2)})
    for n in range(30):
        project.commit(f"cart {n}", {"deploy/cart.yaml": manifest(f"cart:{n}")})
    r = project.revert()
    assert r.commit == bad
    assert project.revert(path="deploy").commit == bad  # a folder works too


def test_already_fixed_in_git_opens_nothing(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    project.commit("release 2.0.0", {"deploy/shop.yaml": manifest(V2)})
    project.commit("hotfix 2.0.1", {"deploy/shop.yaml": manifest("registry.example/shop:2.0.1")})
    with pytest.raises(git.NotProposed) as e:
        project.revert()
    assert e.value.reason == "already_fixed"


def test_a_conflicting_revert_opens_nothing(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    project.commit("release 2.0.0", {"deploy/shop.yaml": manifest(V2)})
    text = manifest(V2).replace('"kind"', '"apiVersion": "apps/v1",\n "kind"')
    project.commit("touch the same lines", {"deploy/shop.yaml": text.replace(V2, V2 + " ")})
    with pytest.raises(git.NotProposed) as e:
        project.revert()
    assert e.value.reason == "conflict" and "by hand" in str(e.value)


def test_a_merge_commit_opens_nothing(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    g, w = project.gitea, project.work
    g.git(w, "checkout", "-q", "-b", "feature")
    (w / "deploy" / "shop.yaml").write_text(manifest(V2))
    g.git(w, "commit", "-q", "-am", "release 2.0.0")
    g.git(w, "checkout", "-q", "main")
    (w / "README.md").write_text("x\n")
    g.git(w, "add", ".")
    g.git(w, "commit", "-q", "-m", "docs")
    g.git(w, "merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
    merge = g.git(w, "rev-parse", "HEAD").strip()
    g.git(w, "push", "-q", "origin", "main")
    with pytest.raises(git.NotProposed) as e:
        project.revert(commit=merge)
    assert e.value.reason == "merge_commit" and "-m 1" in str(e.value)


def test_a_branch_with_other_content_is_never_overwritten(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    bad = project.commit("release 2.0.0", {"deploy/shop.yaml": manifest(V2)})
    g, w = project.gitea, project.work
    g.git(w, "checkout", "-q", "-b", "mine")
    (w / "notes.txt").write_text("someone's work\n")
    g.git(w, "add", ".")
    g.git(w, "commit", "-q", "-m", "someone's work")
    g.git(w, "push", "-q", "origin", f"HEAD:refs/heads/{branch(bad)}")
    theirs = g.git(w, "rev-parse", "HEAD").strip()
    with pytest.raises(git.NotProposed) as e:
        project.revert()
    assert e.value.reason == "branch_exists"
    _, remote = g.api("GET", f"/repos/{USER}/{project.name}/branches/{branch(bad).replace('/', '%2F')}")
    assert remote["commit"]["id"] == theirs  # untouched


def test_a_bad_token_fails_clearly_without_showing_it(project: Project, tmp_path: Path) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    project.commit("release 2.0.0", {"deploy/shop.yaml": manifest(V2)})
    secret = "not-a-valid-token-0123456789"
    src = core.Source(project.url, "deploy/shop.yaml", "main", "", "gitea", "annotations")
    (tmp_path / "bad").mkdir()
    with pytest.raises(git.GitError) as e:
        git.Repo(tmp_path / "bad", project.url, "autorollback", secret).prepare(src, "main", V2, FACTS)
    assert secret not in str(e.value)
    with pytest.raises(forge.ForgeError) as e2:
        forge.Gitea(f"{project.gitea.url}/api/v1", secret).default_branch(USER, project.name)
    assert e2.value.status == 401 and secret not in str(e2.value)


def test_its_own_branch_is_recognised_after_the_base_moved_on(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    project.commit("release 2.0.0", {"deploy/shop.yaml": manifest(V2)})
    first = project.revert()
    project.commit("unrelated", {"README.md": "later\n"})
    again = project.revert()  # another Deployment failing on the same commit, later
    assert again.existed and again.branch == first.branch


def test_a_base_branch_with_a_slash(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    g, w = project.gitea, project.work
    g.git(w, "push", "-q", "origin", "HEAD:refs/heads/release/v2")
    bad = project.commit("release 2.0.0", {"deploy/shop.yaml": manifest(V2)})
    g.git(w, "push", "-q", "origin", "HEAD:refs/heads/release/v2")
    src = core.Source(project.url, "deploy/shop.yaml", "release/v2", "", "gitea", "annotations")
    work = project.tmp / "op-slash"
    work.mkdir()
    r = git.Repo(work, project.url, "autorollback", g.token).prepare(src, "release/v2", V2, FACTS)
    api = project.api()
    url = api.open(USER, project.name, r.branch, "release/v2", "t", "b")
    assert r.commit == bad and api.find_open(USER, project.name, r.branch, "release/v2") == url


def test_an_image_starting_with_a_dash_is_never_an_option(project: Project) -> None:
    image = "-shop:2.0.0"  # as an option of git grep: -s -h -o -p and an unknown `-:`
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    bad = project.commit("release", {"deploy/shop.yaml": manifest(image)})
    assert project.revert(image=image).commit == bad


def test_a_subject_that_is_not_utf8(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    project.commit("release", {"deploy/shop.yaml": manifest(V2)})
    g, w = project.gitea, project.work
    # git commit would re-encode the message as UTF-8: the object is written as is instead
    tree, parent = g.git(w, "rev-parse", "HEAD^{tree}", "HEAD^").split()
    raw = (
        f"tree {tree}\nparent {parent}\nauthor dev <dev@x.invalid> 1700000000 +0000\n"
        f"committer dev <dev@x.invalid> 1700000000 +0000\n\n"
    ).encode() + "Version f\xfcr 2.0.0\n".encode("latin-1")
    (project.tmp / "raw").write_bytes(raw)
    bad = g.git(w, "hash-object", "-t", "commit", "-w", str(project.tmp / "raw")).strip()
    g.git(w, "push", "-q", "-f", "origin", f"{bad}:refs/heads/main")
    r = project.revert()
    assert (r.commit, r.subject) == (bad, "Version f\ufffdr 2.0.0")


def test_a_given_commit_must_touch_the_path_and_introduce_the_image(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1), "deploy/cart.yaml": manifest("cart:1")})
    bad = project.commit("release", {"deploy/shop.yaml": manifest(V2)})
    docs = project.commit("docs", {"README.md": "hi\n"})
    cart = project.commit("cart 2", {"deploy/cart.yaml": manifest("cart:2")})
    assert "does not change deploy/shop.yaml" in project.refused("commit_off_path", commit=docs)
    assert "does not introduce" in project.refused("commit_not_image", commit=cart, path="deploy")
    assert project.revert(commit=cart, path="deploy", image_changed=False).commit == cart  # no image to check
    assert project.revert(commit=bad[:10]).commit == bad


def test_a_commit_that_changes_files_outside_the_allowed_paths(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1), "teams/billing/secret-plan.yaml": "a\n"})
    bad = project.commit("release", {"deploy/shop.yaml": manifest(V2), "teams/billing/secret-plan.yaml": "b\n"})
    message = project.refused("outside_paths", allowed_path=lambda p: p.startswith("deploy/"))
    assert "teams" not in message and "billing" not in message
    assert project.revert(allowed_path=lambda p: True).commit == bad


def _push_on_branch(project: Project, bad: str, start: str, files: dict[str, str], message: str) -> None:
    g, w = project.gitea, project.work
    g.git(w, "checkout", "-q", "-B", "side", start)
    project.commit(message, files, push=f"HEAD:refs/heads/{branch(bad)}")
    g.git(w, "checkout", "-q", "main")


def test_a_branch_with_one_more_commit_is_not_reused(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    bad = project.commit("release", {"deploy/shop.yaml": manifest(V2)})
    first = project.revert()
    g, w = project.gitea, project.work
    g.git(w, "fetch", "-q", "origin", f"refs/heads/{first.branch}")
    _push_on_branch(project, bad, "FETCH_HEAD", {"deploy/extra.yaml": "x\n"}, "and something else")
    project.refused("branch_exists")


def test_the_revert_on_a_parent_that_is_not_on_the_base_is_not_reused(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    bad = project.commit("release", {"deploy/shop.yaml": manifest(V2)})
    g, w = project.gitea, project.work
    g.git(w, "checkout", "-q", "-b", "elsewhere")
    (w / "notes.txt").write_text("not on main\n")
    g.git(w, "add", ".")
    g.git(w, "commit", "-q", "-m", "not on main")
    g.git(w, "revert", "--no-edit", bad)  # git's own revert, right message, wrong base
    g.git(w, "push", "-q", "origin", f"HEAD:refs/heads/{branch(bad)}")
    g.git(w, "checkout", "-q", "main")
    project.refused("branch_exists")


def test_the_right_message_with_another_change_is_not_reused(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    bad = project.commit("release", {"deploy/shop.yaml": manifest(V2)})
    message = f'Revert "release"\n\nThis reverts commit {bad}.\n'
    _push_on_branch(project, bad, "main", {"deploy/shop.yaml": manifest("registry.example/evil:1")}, message)
    project.refused("branch_exists")


def test_exactly_the_revert_pushed_by_someone_else_on_an_older_base_is_reused(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    bad = project.commit("release", {"deploy/shop.yaml": manifest(V2)})
    _push_on_branch(project, bad, "main", {"deploy/shop.yaml": manifest(V1)}, "put 1.0.0 back")
    project.commit("unrelated", {"README.md": "later\n"})
    r = project.revert()
    assert r.existed and r.branch == branch(bad)


def test_each_base_branch_has_its_own_branch(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    bad = project.commit("release", {"deploy/shop.yaml": manifest(V2)})
    project.gitea.git(project.work, "push", "-q", "origin", "HEAD:refs/heads/release/v2")
    src = core.Source(project.url, "deploy/shop.yaml", "release/v2", "", "gitea", "annotations")
    (project.tmp / "op-v2").mkdir()
    other = git.Repo(project.tmp / "op-v2", project.url, "autorollback", project.gitea.token).prepare(
        src, "release/v2", V2, FACTS
    )
    main = project.revert()
    assert other.branch.startswith(f"autorollback/revert-{bad[:12]}-onto-release-v2-")
    assert main.branch == branch(bad) and not main.existed and not other.existed


def test_the_same_revert_is_the_same_commit_and_a_racing_push_of_it_succeeds(project: Project) -> None:
    project.commit("v1", {"deploy/shop.yaml": manifest(V1)})
    bad = project.commit("release", {"deploy/shop.yaml": manifest(V2)})

    class Late(git.Repo):  # looked for the branch before the other replica pushed it
        def git(self, *args: str, **options) -> str:
            return "" if args[0] == "ls-remote" else super().git(*args, **options)

    src = core.Source(project.url, "deploy/shop.yaml", "main", "", "gitea", "annotations")
    ids = []
    for n, repo in enumerate((git.Repo, Late)):
        if n:
            time.sleep(1.1)  # another second: the commit's own time must not matter
        (work := project.tmp / f"op-race-{n}").mkdir()
        r = repo(work, project.url, "autorollback", project.gitea.token).prepare(src, "main", V2, FACTS)
        assert (r.commit, r.branch) == (bad, branch(bad))
        ids.append(project.gitea.git(work / "repo", "rev-parse", "HEAD").strip())
    assert ids[0] == ids[1]
    _, remote = project.gitea.api("GET", f"/repos/{USER}/{project.name}/branches/{branch(bad).replace('/', '%2F')}")
    assert remote["commit"]["id"] == ids[0]


@pytest.mark.parametrize(
    "base",
    [
        "*",
        "ma*",
        "m?in",
        "[m]ain",
        "-main",
        "main:evil",
        "ma in",
        "main\n",
        "a\\b",
        "refs/heads/../x",
        "main.lock",
        "@{-1}",
        "HEAD",
        "",
    ],
)
def test_a_base_that_is_not_a_plain_branch_name_fetches_nothing(gitea: Gitea, tmp_path: Path, base: str) -> None:
    url = gitea.create_repo(f"base-{abs(hash(base)) % 10**8}")
    person = tmp_path / "person"
    gitea.git(tmp_path, "init", "-q", "-b", "main", str(person))
    (person / "deploy").mkdir()
    (person / "deploy" / "shop.yaml").write_text(manifest(V2))
    gitea.git(person, "add", ".")
    gitea.git(person, "commit", "-q", "-m", "release")
    gitea.git(person, "push", "-q", url, "main")
    src = core.Source(url, "deploy/shop.yaml", base, "", "gitea", "annotations")
    (tmp_path / "op").mkdir()
    repo = git.Repo(tmp_path / "op", url, "autorollback", gitea.token)
    with pytest.raises(git.NotProposed) as e:
        repo.prepare(src, base, V2, FACTS)
    assert e.value.reason == "bad_branch", e.value
    assert not repo.run("for-each-ref").text  # nothing fetched
