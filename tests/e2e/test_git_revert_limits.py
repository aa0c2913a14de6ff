"""The revert's bounds against a real Gitea: a huge file, a long history, a deadline (no cluster needed)."""

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from autorollback.gitrevert import core, git

from .gitea import Gitea
from .test_git_revert_cases import FACTS, V1, V2, manifest

HUGE = 300 * 1024 * 1024


@pytest.fixture(scope="module")
def gitea(tmp_path_factory: pytest.TempPathFactory):
    g = Gitea(tmp_path_factory.mktemp("gitea"))
    yield g
    g.stop()


def fast_import(gitea: Gitea, tmp: Path, name: str, stream: bytes) -> str:
    """A repository on the forge made by git fast-import (no working tree, no per-commit process)."""
    url = gitea.create_repo(name)
    work = tmp / name
    gitea.git(tmp, "init", "-q", "-b", "main", str(work))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=work, input=stream, check=True, timeout=300)
    gitea.git(work, "push", "-q", url, "main")
    return url


def commit(mark: int, files: dict[str, bytes], message: str) -> bytes:
    parent = f"from :{mark - 1}\n" if mark > 1 else ""
    out = [
        f"commit refs/heads/main\nmark :{mark}\ncommitter dev <dev@x.invalid> {1700000000 + mark} +0000\n"
        f"data {len(message)}\n{message}\n{parent}".encode()
    ]
    for path, data in files.items():
        out.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
    return b"".join(out)


def prepare(
    url: str,
    token: str,
    work: Path,
    path: str = "deploy/shop.yaml",
    commit_: str = "",
    limits: "git.Limits | None" = None,
) -> git.Revert:
    work.mkdir()
    src = core.Source(url, path, "main", commit_, "gitea", "annotations")
    return git.Repo(work, url, "autorollback", token, *[limits] if limits else []).prepare(
        src, "main", V2, FACTS, push=False
    )


MEASURE = """
import json, resource, sys
from pathlib import Path
from autorollback.gitrevert import core, git
url, token, work = sys.argv[1:4]
src = core.Source(url, "deploy", "main", "", "gitea", "annotations")
try:
    facts = core.RevertFacts(
        namespace="p",
        deployment="s",
        failed_revision=2,
        failed_images=sys.argv[4],
        restored_revision=1,
        restored_images="",
        reason="r",
        message="m",
    )
    git.Repo(Path(work), url, "autorollback", token).prepare(src, "main", sys.argv[4], facts, push=False)
    outcome = "proposed"
except git.NotProposed as e:
    outcome = f"{e.reason}: {e}"
# this image's own peak (VmHWM): ru_maxrss of RUSAGE_SELF keeps the peak of the process it was
# forked from (the pytest worker) across exec on Linux
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"outcome": outcome, "git_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "self_kib": hwm}))
"""


def test_a_300_mb_file_under_the_path_is_refused_and_never_fetched(gitea: Gitea, tmp_path: Path) -> None:
    person = tmp_path / "person"
    gitea.git(tmp_path, "init", "-q", "-b", "main", str(person))
    with open(tmp_path / "huge.bin", "wb") as f:
        f.truncate(HUGE)  # sparse: written and compressed by git in a few seconds
    huge = gitea.git(person, "hash-object", "-w", str(tmp_path / "huge.bin")).strip()
    (person / "deploy").mkdir()
    (person / "deploy" / "shop.yaml").write_text(manifest(V1))
    gitea.git(person, "add", ".")
    gitea.git(person, "update-index", "--add", "--cacheinfo", f"100644,{huge},deploy/model.bin")
    gitea.git(person, "commit", "-q", "-m", "v1 and a model")
    (person / "deploy" / "shop.yaml").write_text(manifest(V2))
    gitea.git(person, "commit", "-q", "-m", "release", "deploy/shop.yaml")
    url = gitea.create_repo("huge")
    gitea.git(person, "push", "-q", url, "main")

    work = tmp_path / "op"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run(
        [sys.executable, "-c", MEASURE, url, gitea.token, str(work), V2],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["outcome"].startswith("file_too_large: deploy/model.bin"), seen
    assert "limit" in seen["outcome"]
    assert seen["git_kib"] < 100 * 1024 and seen["self_kib"] < 100 * 1024, seen
    clone = work / "repo"
    present = subprocess.run(["git", "cat-file", "-e", huge], cwd=clone, capture_output=True, check=False)
    assert present.returncode != 0  # never fetched, and plain git here does not fetch it either
    assert sum(f.stat().st_size for f in clone.rglob("*") if f.is_file()) < 10 * 1024 * 1024


def test_nothing_fetches_a_left_out_blob_later(gitea: Gitea, tmp_path: Path) -> None:
    big = b"x" * (2 * 1024 * 1024)
    url = fast_import(
        gitea,
        tmp_path,
        "lazy",
        commit(1, {"deploy/shop.yaml": manifest(V1).encode(), "data/big.bin": big}, "v1")
        + commit(2, {"deploy/shop.yaml": manifest(V2).encode()}, "release"),
    )
    (tmp_path / "op").mkdir()
    repo = git.Repo(tmp_path / "op", url, "autorollback", gitea.token)
    src = core.Source(url, "deploy/shop.yaml", "main", "", "gitea", "annotations")
    assert repo.prepare(src, "main", V2, FACTS, push=False).commit  # a big file elsewhere does not matter
    for args in (
        ("cat-file", "-p", "refs/remotes/origin/main:data/big.bin"),
        ("grep", "-e", "x", "refs/remotes/origin/main", "--", "data"),
        ("checkout", "-q", "refs/remotes/origin/main", "--", "data/big.bin"),
    ):
        assert repo.run(*args).code != 0
        assert repo.run(*args, network=True).code != 0  # even with the token and network protocols
        assert repo.run(*args, partial=True).code != 0  # a promisor that cannot be reached
    assert repo.run("cat-file", "-e", "refs/remotes/origin/main:data/big.bin").code != 0


@pytest.fixture(scope="module")
def long_history(gitea: Gitea, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """50,000 commits: an old release near the start, the failed one 10 commits from the tip."""
    n, parts = 50_000, [commit(1, {"deploy/shop.yaml": manifest(V1).encode(), "deploy/cart.yaml": b"0\n"}, "v1")]
    parts.append(commit(2, {"deploy/shop.yaml": manifest("registry.example/shop:1.5.0").encode()}, "old release"))
    parts.append(commit(3, {"deploy/shop.yaml": manifest(V1).encode()}, "back to 1.0.0"))
    for mark in range(4, n + 1):
        if mark == n - 10:
            parts.append(commit(mark, {"deploy/shop.yaml": manifest(V2).encode()}, "release 2.0.0"))
        else:
            parts.append(commit(mark, {"deploy/cart.yaml": f"{mark}\n".encode()}, f"cart {mark}"))
    tmp = tmp_path_factory.mktemp("history")
    url = fast_import(gitea, tmp, "long", b"".join(parts))
    log = gitea.git(tmp / "long", "log", "--format=%H %s", "main", "--", "deploy/shop.yaml")
    shas = {subject: sha for sha, subject in (line.split(" ", 1) for line in log.splitlines())}
    return url, shas["release 2.0.0"], shas["old release"]


def test_a_recent_commit_in_50000_is_found_cheaply(gitea: Gitea, long_history, tmp_path: Path) -> None:
    url, bad, _ = long_history
    assert prepare(url, gitea.token, tmp_path / "op").commit == bad  # cheap: only the bounded history is fetched
    fetched = subprocess.run(
        ["git", "rev-list", "--count", "--all"],
        cwd=tmp_path / "op" / "repo",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert int(fetched) <= git.Limits().history + 1


def test_commits_beyond_the_bound_are_refused_never_guessed(gitea: Gitea, long_history, tmp_path: Path) -> None:
    url, bad, old = long_history
    with pytest.raises(git.NotProposed) as e:
        prepare(url, gitea.token, tmp_path / "a", commit_=old)
    assert e.value.reason == "commit_unknown" and f"last {git.Limits().history} commits of main" in str(e.value)
    with pytest.raises(git.NotProposed) as e:
        prepare(url, gitea.token, tmp_path / "b", limits=git.Limits(history=5))
    assert e.value.reason == "no_commit" and "last 5" in str(e.value)
    with pytest.raises(git.NotProposed) as e:  # the oldest fetched commit: its parent is not there
        prepare(url, gitea.token, tmp_path / "c", commit_=bad, limits=git.Limits(history=11))
    assert e.value.reason == "history_limit" and "parent" in str(e.value)
    assert prepare(url, gitea.token, tmp_path / "d", commit_=bad, limits=git.Limits(history=12)).commit == bad


def test_a_revert_past_its_deadline_stops(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()  # answers nothing
    url = f"http://127.0.0.1:{server.getsockname()[1]}/team/app.git"
    with pytest.raises(git.GitError) as e:
        prepare(url, "token", tmp_path / "op", limits=git.Limits(deadline=3))
    assert "deadline" in str(e.value)  # only the deadline ends a command that never answers
    server.close()


def test_a_repository_too_large_in_its_history_is_refused_while_fetching(gitea: Gitea, tmp_path: Path) -> None:
    """Each file under the blob limit, 100 MiB in all, none under the path: the clone stops at its disk cap."""
    assets = {f"assets/{n:03}.bin": os.urandom(900 * 1024) for n in range(120)}  # incompressible
    url = fast_import(
        gitea,
        tmp_path,
        "wide",
        commit(1, {"deploy/shop.yaml": manifest(V1).encode(), **assets}, "v1")
        + commit(2, {"deploy/shop.yaml": manifest(V2).encode()}, "release"),
    )
    cap = 32 * 1024 * 1024
    with pytest.raises(git.NotProposed) as e:
        prepare(url, gitea.token, tmp_path / "op", limits=git.Limits(disk=cap))
    assert e.value.reason == "repository_too_large" and "32 MiB" in str(e.value), e.value
    held = sum(f.stat().st_size for f in (tmp_path / "op" / "repo" / ".git").rglob("*") if f.is_file())
    assert held < cap + 4 * 1024 * 1024, held  # stopped on the way, not after the whole 105 MiB
    small = fast_import(
        gitea,
        tmp_path,
        "narrow",
        commit(1, {"deploy/shop.yaml": manifest(V1).encode(), "assets/a.bin": os.urandom(900 * 1024)}, "v1")
        + commit(2, {"deploy/shop.yaml": manifest(V2).encode()}, "release"),
    )
    assert prepare(small, gitea.token, tmp_path / "op2", limits=git.Limits(disk=cap)).commit


def test_git_is_the_first_oom_victim_under_its_memory_limit(tmp_path: Path) -> None:
    repo = git.Repo(tmp_path, "http://127.0.0.1:9/team/app.git", "autorollback", "token")
    repo.tree.mkdir()
    # an alias runs in a shell started by git: git's own values (its parent's) and those it passes on
    shown = repo.git("-c", "alias.seen=!cat /proc/$PPID/oom_score_adj /proc/self/oom_score_adj; ulimit -d", "seen")
    assert shown.split() == ["1000", "1000", str(git.Limits().memory // 1024)], shown
    assert git.Limits().memory == 96 * 1024 * 1024
