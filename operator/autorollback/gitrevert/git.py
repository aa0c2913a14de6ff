"""The revert itself, with the `git` binary (the reference implementation of `git revert`).

The token reaches git only through GIT_ASKPASS reading it from git's own environment: never in
a URL, an argument, .git/config, an error message or a log line; and only commands that talk to
the forge (fetch, ls-remote, push) have it.

Every git command is bounded: output kept up to a cap, a memory limit, a timeout within one
deadline for the whole revert. Only the last `Limits.history` commits of the base branch are
fetched, without blobs of `Limits.blob` bytes or more, and nothing is ever fetched later behind
the operator's back (no lazy fetch from the promisor remote). The filter bounds each file, not their
sum: trees and every smaller file of that history come along, so a clone's objects are watched while
git talks to the forge and git is stopped past `Limits.disk` bytes. (No server-side filter helps: only
`sparse:oid` would leave out files by path, and it needs a blob on the forge naming the paths.)
"""

import contextlib
import os
import re
import selectors
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from autorollback.gitrevert import core

PASSED = {"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "GIT_SSL_CAINFO", "SSL_CERT_FILE"}  # the rest stays out
ERROR_CAP = 64 * 1024  # bytes of stderr kept
MAX_FILES = 1000  # files one reverted commit may change
ASKPASS = """#!/bin/sh
# Only for the repository's own host: git names it in the prompt.
case "$1" in *"$AUTOROLLBACK_GIT_HOST"*) ;; *) exit 1 ;; esac
case "$1" in
  Username*) printf '%s\\n' "$AUTOROLLBACK_GIT_USER" ;;
  *) printf '%s\\n' "$AUTOROLLBACK_GIT_TOKEN" ;;
esac
"""
# Memory: RLIMIT_DATA bounds what git allocates (heap, anonymous maps) but not its read-only maps
# of pack files, which RLIMIT_AS would count and break. Several git processes at once can still pass
# the pod's memory limit: git (and all it starts) is then the kernel's first OOM victim, never the
# operator (raising one's own oom_score_adj needs no privilege; where /proc is not writable, it stays).
# Disk: while git talks to the forge, no file it writes (the fetched pack) grows past the clone's cap
# (RLIMIT_FSIZE, in 512-byte blocks: SIGXFSZ stops index-pack there), and their sum is measured.
# Set by the shell: no Python between fork and exec (preexec_fn is unsafe in a threaded process).
LIMITED = (
    '{ echo 1000 >/proc/self/oom_score_adj; } 2>/dev/null; ulimit -d "$0" && '
    '{ [ "$1" = - ] || ulimit -f "$1"; } && shift && exec git "$@"'
)
WATCH_EVERY = 0.2  # seconds between two measures of a clone's size while git talks to the forge
# A base branch is a plain branch name: never a pattern (`*` fetches every branch), an option or a refspec.
NOT_IN_BRANCH = re.compile(r"[*?\[\\:\s]|^-|^HEAD$|^$")
SMALL = (
    "core.packedGitLimit=64m",
    "core.packedGitWindowSize=1m",
    "core.deltaBaseCacheLimit=8m",
    "core.bigFileThreshold=1m",
    "pack.windowMemory=16m",
    "pack.deltaCacheSize=8m",
    "pack.threads=1",
    "http.followRedirects=false",
    "merge.renames=false",
    "diff.renames=false",
)
# The fetch leaves blobs out (a partial clone); git then needs a promisor remote to accept that, and
# would fetch any blob it misses from it. After each fetch the promisor is one that cannot be reached.
NOWHERE = ("remote.never.url=/dev/null/autorollback-never-fetches", "remote.never.promisor=true")


@dataclass(frozen=True)
class Limits:
    blob: int = 1024 * 1024  # files this size or larger are never fetched; a revert that needs one is refused
    output: int = 1024 * 1024  # bytes kept from one command's output; a diff over it is refused
    memory: int = 96 * 1024 * 1024  # data segment of each git process
    disk: int = 64 * 1024 * 1024  # bytes of objects one clone may hold; past it git is stopped and the revert refused
    history: int = 200  # commits of the base branch fetched and searched
    deadline: float = 300.0  # seconds for one whole revert
    timeout: float = 120.0  # seconds for one git command
    # set on shutdown (by the Git worker): a running revert stops at its next git command
    stopping: threading.Event = field(default_factory=threading.Event, compare=False)


class GitError(Exception):
    pass


class NotProposed(Exception):
    """Nothing to open, and why: a reason for the metric and a message for a person."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Revert:
    commit: str  # the reverted commit
    subject: str
    branch: str
    base: str
    existed: bool  # the branch was already there with this revert


@dataclass(frozen=True)
class Output:
    code: int
    raw: bytes
    error: str
    over: bool = False  # stdout passed the cap: the rest was dropped and git stopped

    @property
    def text(self) -> str:
        return self.raw.decode(errors="replace")


@dataclass(frozen=True)
class Change:
    path: str
    old: str  # blob in the parent ("0"*40: none)
    new: str  # blob in the commit


def _sparse_pattern(path: str) -> bytes:
    return b"/" + re.sub(rb"([\\*?\[\] !#])", rb"\\\1", os.fsencode(path)) + b"\n"


class Repo:
    def __init__(self, workdir: Path, url: str, user: str, token: str, limits: Limits = Limits()):
        self.dir, self.url, self.limits, self._secret = workdir, url, limits, token
        askpass = workdir / "askpass.sh"
        askpass.write_text(ASKPASS)
        askpass.chmod(0o700)
        passed = {k: v for k, v in os.environ.items() if k.upper() in PASSED}
        self.local_env = {
            **passed,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_LITERAL_PATHSPECS": "1",
            "GIT_AUTHOR_NAME": "autorollback",
            "GIT_AUTHOR_EMAIL": "autorollback@users.noreply.invalid",
            "GIT_COMMITTER_NAME": "autorollback",
            "GIT_COMMITTER_EMAIL": "autorollback@users.noreply.invalid",
        }
        self.env = {
            **self.local_env,
            "GIT_ASKPASS": str(askpass),
            "AUTOROLLBACK_GIT_USER": user,
            "AUTOROLLBACK_GIT_TOKEN": token,
            "AUTOROLLBACK_GIT_HOST": urllib.parse.urlsplit(url).netloc,
        }
        self.tree = workdir / "repo"
        self._end = time.monotonic() + limits.deadline

    # --- running git -------------------------------------------------------------------------------

    def run(
        self,
        *args: str,
        network: bool = False,
        stdin: bytes = b"",
        cap: int | None = None,
        partial: bool = False,
        env: dict[str, str] | None = None,
    ) -> Output:
        """One git command, bounded. `network` only for the commands that talk to the forge: the clone's size
        is watched meanwhile. `partial` for the ones that write an index or a pack: they accept the blobs the
        fetch left out only with a promisor (one that cannot be reached); without it a missing blob is an
        error, never a fetch."""
        if self.limits.stopping.is_set():
            raise GitError("the operator is shutting down")
        left = self._end - time.monotonic()
        if left <= 0:
            raise GitError(f"the revert ran past its deadline of {self.limits.deadline:g}s (before git {args[0]})")
        timeout = min(self.limits.timeout, left)
        config = [
            a
            for c in SMALL + (NOWHERE if partial else ()) + (() if network else ("protocol.allow=never",))
            for a in ("-c", c)
        ]
        files = str(self.limits.disk // 512 + 1) if network else "-"  # one block more: past the cap is seen
        proc = subprocess.Popen(
            ["/bin/sh", "-c", LIMITED, str(self.limits.memory // 1024), files, *config, *args],
            cwd=self.tree,
            env={**(self.env if network else self.local_env), **(env or {})},
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err, over = _collect(
                proc, stdin, cap or self.limits.output, time.monotonic() + timeout, self._too_large if network else None
            )
            if network and self._too_large():  # it may have ended between two measures
                raise _TooLarge
        except _TooLarge:  # git is stopped below, before anything else is written
            raise NotProposed(
                "repository_too_large",
                f"the last {self.limits.history} commits of this repository, "
                f"even without its files of {self.limits.blob} bytes or more, "
                f"take more than {self.limits.disk >> 20} MiB, the operator's "
                "disk limit for one clone (the repository's size in that "
                "history, not one file or the path): revert by hand",
            ) from None
        except TimeoutError:
            if timeout < self.limits.timeout:
                raise GitError(
                    f"git {args[0]} stopped: the revert ran past its deadline of {self.limits.deadline:g}s"
                ) from None
            raise GitError(f"git {args[0]} took longer than {timeout:g}s") from None
        finally:
            _stop(proc)
        error = self._clean(err.decode(errors="replace").strip())
        if proc.returncode != 0 and not over and ("Out of memory" in error or proc.returncode < 0):
            raise GitError(
                f"git {args[0]} was stopped by its memory limit of {self.limits.memory >> 20} MiB "
                f"({error[-200:] or f'signal {-proc.returncode}'})"
            )
        return Output(proc.returncode, out, error, over)

    def git(self, *args: str, network: bool = False, partial: bool = False, env: dict[str, str] | None = None) -> str:
        """A command that must succeed, with output under the cap."""
        out = self.run(*args, network=network, partial=partial, env=env)
        if out.over:
            raise GitError(f"git {args[0]} printed more than {self.limits.output} bytes")
        if out.code != 0:
            raise GitError(f"git {args[0]} failed: {(out.error or self._clean(out.text.strip()))[-500:]}")
        return out.text

    def ok(self, *args: str, partial: bool = False) -> bool:
        return self.run(*args, partial=partial).code == 0

    def _too_large(self) -> bool:
        return _size(self.tree / ".git" / "objects") > self.limits.disk

    def _clean(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _fetch(self, ref: str, depth: int) -> None:
        self.git(
            "fetch",
            "-q",
            "--no-tags",
            f"--depth={depth}",
            f"--filter=blob:limit={self.limits.blob}",
            "origin",
            ref,
            network=True,
            partial=True,
        )
        for key in ("remote.origin.promisor", "remote.origin.partialclonefilter", "extensions.partialclone"):
            self.run("config", "--unset-all", key)
        self.run("config", "--remove-section", "remote.never")

    # --- the revert --------------------------------------------------------------------------------

    def prepare(
        self,
        source: core.Source,
        base: str,
        failed_image: str,
        facts: core.RevertFacts,
        push: bool = True,
        allowed_path: Callable[[str], bool] | None = None,
        image_changed: bool = True,
    ) -> Revert:
        """The revert commit on its branch; pushed unless this is only a plan (dry-run).
        `image_changed`: the failed version changed an image (then a given commit must introduce it)."""
        self._end = time.monotonic() + self.limits.deadline
        self.tree.mkdir()
        self.git("init", "-q")
        self.git("remote", "add", "origin", source.repo)
        if NOT_IN_BRANCH.search(base) or not self.ok("check-ref-format", "--branch", base):
            raise NotProposed("bad_branch", f"{base[:200]!r} is not a plain branch name: nothing is fetched")
        tip = f"refs/remotes/origin/{base}"
        self._fetch(f"refs/heads/{base}:{tip}", self.limits.history)
        self._refuse_large(self._tree_blobs(tip, source.path), f"{base} under {source.path}")
        if source.commit:
            commit = self._given(source, base, failed_image, image_changed)
        else:
            commit = self._find(tip, base, source.path, failed_image)
        if not self.ok("merge-base", "--is-ancestor", commit, tip):
            raise NotProposed("not_on_branch", f"commit {commit[:12]} is not on {base}: nothing to revert there")
        if not self._names(tip, source.path, failed_image):
            raise NotProposed(
                "already_fixed",
                f"{base} no longer names {failed_image} under {source.path}: it was fixed in Git already",
            )
        self._refuse_merge(commit)
        changes = self._changes(commit)
        if allowed_path is not None and not all(allowed_path(c.path) for c in changes):
            raise NotProposed(
                "outside_paths",
                f"commit {commit[:12]} also changes files outside the paths this "
                "namespace may revert: revert it by hand",
            )
        self._refuse_large([(c.path, b) for c in changes for b in (c.old, c.new)], f"commit {commit[:12]}")
        self._refuse_large(self._tree_blobs(tip, *(c.path for c in changes)), f"{base}")
        subject = self.git("log", "-1", "--format=%s", commit).strip()
        branch = core.branch_name(commit, base)
        self._checkout(changes, "-b", branch, tip)
        if not self._revert(commit):
            raise NotProposed(
                "conflict",
                f"reverting {commit[:12]} conflicts with later changes on {base}: "
                f"revert it by hand (`git revert {commit[:12]}`) and resolve the conflict",
            )
        message = self.tree / ".git" / "AUTOROLLBACK_MSG"
        message.write_text(core.commit_message(subject, commit, facts), errors="replace")
        # The same revert on the same base is the same commit: two replicas racing push one commit, and the
        # second push is "Everything up-to-date", a success.
        when = self.git("log", "-1", "--format=%cI", commit).strip() or "1970-01-01T00:00:00+00:00"
        self.git(
            "commit",
            "-q",
            "--no-verify",
            "-F",
            str(message),
            partial=True,
            env={"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when},
        )
        if self._remote_has(branch):
            return self._reuse(branch, commit, subject, base, tip, changes)
        if push:
            # never --force, never the base branch
            out = self.run("push", "-q", "origin", f"HEAD:refs/heads/{branch}", network=True, partial=True)
            if out.code != 0 or out.over:
                if self._remote_has(branch):  # pushed meanwhile by someone else (another message, base)
                    return self._reuse(branch, commit, subject, base, tip, changes)
                raise GitError(f"git push failed: {(out.error or self._clean(out.text.strip()))[-500:]}")
        return Revert(commit, subject, branch, base, existed=False)

    def _remote_has(self, branch: str) -> bool:
        return bool(self.git("ls-remote", "--heads", "origin", f"refs/heads/{branch}", network=True).strip())

    def _reuse(self, branch: str, commit: str, subject: str, base: str, tip: str, changes: list[Change]) -> Revert:
        if not self._is_this_revert(branch, commit, tip, changes):
            raise NotProposed(
                "branch_exists",
                f"branch {branch} exists on the remote with other content; "
                "autorollback never overwrites a branch: delete it or open the "
                "pull request by hand",
            )
        return Revert(commit, subject, branch, base, existed=True)

    def _given(self, source: core.Source, base: str, image: str, image_changed: bool) -> str:
        """The tenant-named commit, if it is one the operator can see whole and it made this change."""
        commit = self.run("rev-parse", "--verify", "-q", f"{source.commit}^{{commit}}").text.strip()
        if not commit:
            raise NotProposed(
                "commit_unknown",
                f"commit {source.commit} (from {core.COMMIT}) is not among the last "
                f"{self.limits.history} commits of {base} in {source.repo}",
            )
        self._refuse_shallow(commit, base)
        self._refuse_merge(commit)
        if not self.git("diff-tree", "-r", "-z", "--root", "--no-commit-id", "--name-only", commit, "--", source.path):
            raise NotProposed(
                "commit_off_path",
                f"commit {commit[:12]} (from {core.COMMIT}) does not change "
                f"{source.path}: it is not the one that made this version",
            )
        if image_changed and not core.introduces(self._diff(commit, source.path), image):
            raise NotProposed(
                "commit_not_image",
                f"commit {commit[:12]} (from {core.COMMIT}) does not introduce "
                f"{image} under {source.path}: it is not the one that made "
                "this version",
            )
        return commit

    def _find(self, tip: str, base: str, path: str, image: str) -> str:
        """The newest fetched commit on the base branch whose change to the path introduced the failed image:
        it adds a line naming it, and its parent did not name it (later edits of those lines are not it)."""
        shallow = self._shallow()
        for sha in self.git("log", "--format=%H", tip, "--", path).split():
            if sha in shallow:
                break  # its parent was not fetched: what it changed cannot be known
            if core.introduces(self._diff(sha, path), image) and (
                not self._parents(sha) or not self._names(f"{sha}^", path, image)
            ):
                return sha
        raise NotProposed(
            "no_commit",
            f"no commit among the last {self.limits.history} on {base} introduces "
            f"{image} under {path}: set {core.COMMIT} from CI to name it, or revert by hand",
        )

    # --- pieces --------------------------------------------------------------------------------------

    def _shallow(self) -> set[str]:
        f = self.tree / ".git" / "shallow"
        return set(f.read_text().split()) if f.exists() else set()

    def _refuse_shallow(self, commit: str, base: str) -> None:
        if commit in self._shallow():
            raise NotProposed(
                "history_limit",
                f"commit {commit[:12]} is the oldest of the {self.limits.history} "
                f"commits of {base} the operator reads: what it changed cannot be "
                "known without its parent; revert it by hand",
            )

    def _refuse_merge(self, commit: str) -> None:
        if len(self._parents(commit)) > 1:
            raise NotProposed(
                "merge_commit",
                f"commit {commit[:12]} is a merge commit: revert it by hand with "
                f"`git revert -m 1 {commit[:12]}` after checking which side is "
                "the change",
            )

    def _parents(self, commit: str) -> list[str]:
        """From the commit object itself: its parents even where the fetched history stops."""
        header = self.run("cat-file", "commit", commit).raw.split(b"\n\n", 1)[0]
        return [line.split()[1].decode() for line in header.splitlines() if line.startswith(b"parent ")]

    def _diff(self, sha: str, path: str) -> str:
        out = self.run("show", "--format=", "--no-ext-diff", "--no-textconv", sha, "--", path)
        if out.over:
            raise NotProposed(
                "diff_too_large",
                f"commit {sha[:12]} changes more than {self.limits.output} bytes "
                f"under {path}: too large to read; revert by hand",
            )
        if out.code != 0:
            self._refuse_large(
                [(c.path, b) for c in self._changes(sha, path) for b in (c.old, c.new)], f"commit {sha[:12]}"
            )
            raise GitError(f"git show failed: {out.error[-500:]}")
        return out.text

    def _names(self, rev: str, path: str, image: str) -> bool:
        """The files under the path at this revision name the image (-e: an image is never an option)."""
        out = self.run("grep", "-q", "-w", "-F", "-e", image, rev, "--", path)
        if out.code == 0 or (out.code == 1 and not out.error):
            return out.code == 0
        self._refuse_large(self._tree_blobs(rev, path), f"{rev} under {path}")
        raise GitError(f"git grep failed: {out.error[-500:]}")

    def _changes(self, commit: str, *paths: str) -> list[Change]:
        out = self.run(
            "diff-tree", "-r", "-z", "--root", "--no-commit-id", "--no-renames", "--abbrev=40", commit, "--", *paths
        )
        if out.code != 0:
            raise GitError(f"git diff-tree failed: {out.error[-500:]}")
        fields = out.raw.split(b"\0")
        changes = [
            Change(os.fsdecode(fields[i + 1]), *fields[i].decode().split()[2:4]) for i in range(0, len(fields) - 1, 2)
        ]
        if out.over or len(changes) > MAX_FILES:
            raise NotProposed(
                "diff_too_large", f"commit {commit[:12]} changes more than {MAX_FILES} files: revert it by hand"
            )
        return changes

    def _tree_blobs(self, rev: str, *paths: str) -> list[tuple[str, str]]:
        """(path, blob) of the files under these paths at a revision, read from trees only."""
        if not paths:
            return []
        out = self.run("ls-tree", "-r", "-z", "--full-tree", rev, "--", *paths)
        if out.over:
            raise NotProposed(
                "too_many_files",
                f"more than {self.limits.output // 100} files under {', '.join(paths)[:200]}: too many to read",
            )
        if out.code != 0:
            raise GitError(f"git ls-tree failed: {out.error[-500:]}")
        entries = [e.split(b"\t", 1) for e in out.raw.split(b"\0") if e]
        return [(os.fsdecode(name), meta.split()[2].decode()) for meta, name in entries if meta.split()[1] == b"blob"]

    def _refuse_large(self, blobs: Iterable[tuple[str, str]], where: str) -> None:
        """The blobs the fetch left out are the ones of Limits.blob bytes or more: a revert needing one stops."""
        wanted = {oid: path for path, oid in blobs if oid.strip("0")}
        if not wanted:
            return
        self.run("config", "--remove-section", "remote.never")  # left by a failed lazy fetch: it would try again
        out = self.run(
            "cat-file", "--batch-check=%(objectname) %(objectsize)", stdin="".join(f"{o}\n" for o in wanted).encode()
        )
        if out.code != 0 or out.over:
            raise GitError(f"git cat-file failed: {out.error[-500:]}")
        total = 0
        for line in out.text.splitlines():
            oid, _, state = line.partition(" ")
            if state == "missing":
                raise NotProposed(
                    "file_too_large",
                    f"{wanted[oid]} in {where} is over the operator's file-size "
                    f"limit for reverts ({self.limits.blob} bytes); it is never "
                    "fetched: revert by hand",
                )
            total += int(state) if state.isdigit() else 0
        if total > self.limits.disk:  # what a checkout of them would write, however well they compress
            raise NotProposed(
                "repository_too_large",
                f"the files in {where} add up to more than the operator's "
                f"disk cap for one revert ({self.limits.disk} bytes): revert "
                "by hand",
            )

    def _checkout(self, changes: list[Change], *args: str) -> None:
        """Only the changed files are written out: the rest of the tree is never read."""
        if not (self.tree / ".git" / "info" / "sparse-checkout").exists():
            if any("\n" in c.path for c in changes):
                raise NotProposed("conflict", "a changed file's name holds a line break: revert it by hand")
            self.git("config", "core.sparseCheckout", "true")
            (self.tree / ".git" / "info").mkdir(exist_ok=True)
            (self.tree / ".git" / "info" / "sparse-checkout").write_bytes(
                b"".join(_sparse_pattern(c.path) for c in changes) or b"/.autorollback-nothing\n"
            )
        self.git("checkout", "-q", *args, partial=True)

    def _revert(self, commit: str) -> bool:
        if self.ok("revert", "--no-edit", "--no-commit", commit, partial=True):
            return True
        self.run("revert", "--abort", partial=True)
        return False

    def _is_this_revert(self, branch: str, commit: str, tip: str, changes: list[Change]) -> bool:
        """Exactly what the operator would push: one commit on a commit of the base branch, whose tree
        is the revert applied there (its message proves nothing)."""
        theirs = f"refs/remotes/origin/{branch}"
        self._fetch(f"refs/heads/{branch}:{theirs}", 1)
        parents = self._parents(theirs)
        if len(parents) != 1 or not self.ok("merge-base", "--is-ancestor", parents[0], tip):
            return False
        tree = self.git("rev-parse", f"{theirs}^{{tree}}").strip()
        if parents[0] == self.git("rev-parse", tip).strip():
            return tree == self.git("rev-parse", "HEAD^{tree}").strip()
        self._refuse_large(self._tree_blobs(parents[0], *(c.path for c in changes)), f"{branch}'s parent")
        self._checkout(changes, "--detach", parents[0])
        return self._revert(commit) and tree == self.git("write-tree", partial=True).strip()


class _TooLarge(Exception):
    pass


def _size(top: Path) -> int:
    """Bytes of the files under a folder (files that vanish meanwhile, such as a renamed temporary pack, are 0)."""
    total = 0
    try:
        entries = list(os.scandir(top))
    except OSError:
        return 0
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                total += _size(Path(e.path))
            else:
                total += e.stat(follow_symlinks=False).st_size
        except OSError:
            pass
    return total


def _collect(
    proc: subprocess.Popen, stdin: bytes, cap: int, until: float, too_large: Callable[[], bool] | None = None
) -> tuple[bytes, bytes, bool]:
    """stdout up to the cap (past it git is stopped), stderr up to ERROR_CAP, stdin written meanwhile;
    `too_large` asked every WATCH_EVERY seconds (true: _TooLarge, and git is stopped)."""
    out, err = bytearray(), bytearray()
    measured = time.monotonic()
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, (out, cap))
        sel.register(proc.stderr, selectors.EVENT_READ, (err, ERROR_CAP))
        if stdin:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin, selectors.EVENT_WRITE)
        while sel.get_map():
            now = time.monotonic()
            left = until - now
            if left <= 0:
                raise TimeoutError
            if too_large is not None:
                if now - measured >= WATCH_EVERY:
                    if too_large():
                        raise _TooLarge
                    measured = now
                left = min(left, measured + WATCH_EVERY - now)
            for key, _ in sel.select(left):
                if key.fileobj is proc.stdin:
                    try:
                        stdin = stdin[os.write(proc.stdin.fileno(), stdin[:65536]) :]
                    except BrokenPipeError:
                        stdin = b""
                    if not stdin:
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                kept, limit = key.data
                if len(kept) + len(chunk) > limit and key.fileobj is proc.stdout:
                    return bytes(out), bytes(err), True
                kept += chunk[: limit - len(kept)]
    try:
        proc.wait(max(0.0, until - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise TimeoutError from None
    return bytes(out), bytes(err), False


def _stop(proc: subprocess.Popen) -> None:
    """git and whatever it started (git-remote-https, an upload-pack) end with it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f:
            f.close()
