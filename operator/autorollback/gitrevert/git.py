"""The revert itself, with the `git` binary (the reference implementation of `git revert`).

The token reaches git only through GIT_ASKPASS reading it from git's own environment: never in
a URL, an argument, .git/config, an error message or a log line.
"""
import os
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from autorollback.gitrevert import core

TIMEOUT = 120  # seconds per git command
STOPPING = threading.Event()  # set on shutdown: a running revert stops at its next git command
PASSED = {"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "GIT_SSL_CAINFO", "SSL_CERT_FILE"}  # the rest stays out
HISTORY = 200  # commits searched for the one that introduced the failed version
ASKPASS = """#!/bin/sh
# Only for the repository's own host: git names it in the prompt.
case "$1" in *"$AUTOROLLBACK_GIT_HOST"*) ;; *) exit 1 ;; esac
case "$1" in
  Username*) printf '%s\\n' "$AUTOROLLBACK_GIT_USER" ;;
  *) printf '%s\\n' "$AUTOROLLBACK_GIT_TOKEN" ;;
esac
"""


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


class Repo:
    def __init__(self, workdir: Path, url: str, user: str, token: str):
        self.dir, self.url, self._secret = workdir, url, token
        askpass = workdir / "askpass.sh"
        askpass.write_text(ASKPASS)
        askpass.chmod(0o700)
        passed = {k: v for k, v in os.environ.items() if k.upper() in PASSED}
        self.env = {**passed, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
                    "GIT_ASKPASS": str(askpass), "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
                    "AUTOROLLBACK_GIT_USER": user, "AUTOROLLBACK_GIT_TOKEN": token,
                    "AUTOROLLBACK_GIT_HOST": urllib.parse.urlsplit(url).netloc,
                    "GIT_AUTHOR_NAME": "autorollback", "GIT_AUTHOR_EMAIL": "autorollback@users.noreply.invalid",
                    "GIT_COMMITTER_NAME": "autorollback", "GIT_COMMITTER_EMAIL": "autorollback@users.noreply.invalid"}
        self.tree = workdir / "repo"

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if STOPPING.is_set():
            raise GitError("the operator is shutting down")
        try:
            p = subprocess.run(["git", "-c", "http.followRedirects=false", *args], cwd=self.tree, env=self.env,
                               capture_output=True, text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} took longer than {TIMEOUT}s") from None
        if check and p.returncode != 0:
            raise GitError(f"git {args[0]} failed: {self._clean(p.stderr.strip() or p.stdout.strip())[-500:]}")
        return p

    def _clean(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def prepare(self, source: core.Source, base: str, failed_image: str, facts: core.Facts,
                push: bool = True) -> Revert:
        """The revert commit on its branch; pushed unless this is only a plan (dry-run)."""
        self.tree.mkdir()
        self.git("init", "-q")
        self.git("remote", "add", "origin", source.repo)
        self.git("fetch", "-q", "--no-tags", "--filter=blob:none", "origin", f"refs/heads/{base}:refs/remotes/origin/{base}")
        tip = f"refs/remotes/origin/{base}"
        commit = source.commit and self.git("rev-parse", "--verify", "-q", f"{source.commit}^{{commit}}",
                                            check=False).stdout.strip()
        if source.commit and not commit:
            raise NotProposed("commit_unknown", f"commit {source.commit} (from {core.COMMIT}) is not in {source.repo}")
        if not commit:
            commit = self._find(tip, source.path, failed_image)
        if self.git("merge-base", "--is-ancestor", commit, tip, check=False).returncode != 0:
            raise NotProposed("not_on_branch", f"commit {commit[:12]} is not on {base}: nothing to revert there")
        if self.git("grep", "-q", "-w", "-F", failed_image, tip, "--", source.path, check=False).returncode != 0:
            raise NotProposed("already_fixed", f"{base} no longer names {failed_image} under {source.path}: it "
                                               "was fixed in Git already")
        parents = self.git("rev-list", "--parents", "-n", "1", commit).stdout.split()
        if len(parents) > 2:
            raise NotProposed("merge_commit", f"commit {commit[:12]} is a merge commit: revert it by hand with "
                                              f"`git revert -m 1 {commit[:12]}` after checking which side is the change")
        subject = self.git("log", "-1", "--format=%s", commit).stdout.strip()
        branch = core.branch_name(commit)
        self.git("checkout", "-q", "-b", branch, tip)
        if self.git("revert", "--no-edit", "--no-commit", commit, check=False).returncode != 0:
            self.git("revert", "--abort", check=False)
            raise NotProposed("conflict", f"reverting {commit[:12]} conflicts with later changes on {base}: "
                                          f"revert it by hand (`git revert {commit[:12]}`) and resolve the conflict")
        message = self.tree / ".git" / "AUTOROLLBACK_MSG"
        message.write_text(core.commit_message(subject, commit, facts))
        self.git("commit", "-q", "-F", str(message))
        remote = self.git("ls-remote", "--heads", "origin", f"refs/heads/{branch}").stdout.strip()
        if not push:
            return Revert(commit, subject, branch, base, existed=bool(remote))
        if remote:
            self.git("fetch", "-q", "--no-tags", "--filter=blob:none", "origin",
                     f"refs/heads/{branch}:refs/remotes/origin/{branch}")
            theirs = self.git("rev-parse", f"refs/remotes/origin/{branch}^{{tree}}").stdout.strip()
            ours = self.git("log", "--format=%B", f"{tip}..refs/remotes/origin/{branch}").stdout
            own = f"This reverts commit {commit}." in ours and ours.count("This reverts commit") == 1
            if theirs != self.git("rev-parse", "HEAD^{tree}").stdout.strip() and not own:
                raise NotProposed("branch_exists", f"branch {branch} exists on the remote with other content; "
                                                   "autorollback never overwrites a branch: delete it or open the "
                                                   "pull request by hand")
            return Revert(commit, subject, branch, base, existed=True)
        self.git("push", "-q", "origin", f"HEAD:refs/heads/{branch}")  # never --force, never the base branch
        return Revert(commit, subject, branch, base, existed=False)

    def _find(self, tip: str, path: str, image: str) -> str:
        """The newest commit on the base branch whose change to the path introduced the failed image:
        it adds a line naming it, and its parent did not name it (later edits of those lines are not it)."""
        for sha in self.git("log", f"--max-count={HISTORY}", "--format=%H", tip, "--", path).stdout.split():
            diff = self.git("show", "--format=", "--no-ext-diff", sha, "--", path).stdout
            if core.introduces(diff, image) and self.git("grep", "-q", "-w", "-F", image, f"{sha}^", "--", path,
                                                         check=False).returncode != 0:
                return sha
        raise NotProposed("no_commit", f"no commit among the last {HISTORY} on {path} introduces {image}: set "
                                       f"{core.COMMIT} from CI to name it")
