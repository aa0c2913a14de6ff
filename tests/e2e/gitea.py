"""A real Gitea (built by hack/build-tools.sh) on SQLite in a temporary folder, for the Git revert tests."""

import base64
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from . import kit

USER = "forgeadmin"


def binary() -> Path:
    path = kit.cache() / "bin" / f"gitea-{kit._versions()['GITEA_VERSION']}"
    if not (path / "gitea").exists():
        raise AssertionError(f"{path}/gitea is missing: run `make tools`")
    return path


class Gitea:
    def __init__(self, tmp: Path):
        tmp.mkdir(parents=True, exist_ok=True)
        self.tmp, self.port = tmp, kit.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder = binary()
        self.env = {**os.environ, "GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT": "true", "HOME": str(tmp)}
        self.config = tmp / "app.ini"
        secrets = {
            k: self._gitea("generate", "secret", k, config=False).stdout.strip().splitlines()[-1]
            for k in ("INTERNAL_TOKEN", "SECRET_KEY", "JWT_SECRET")
        }
        self.config.write_text(f"""
APP_NAME = autorollback-test
RUN_MODE = prod
WORK_PATH = {tmp}/work
[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = {self.port}
ROOT_URL = {self.url}/
STATIC_ROOT_PATH = {folder}/static
APP_DATA_PATH = {tmp}/data
DISABLE_SSH = true
START_SSH_SERVER = false
LFS_START_SERVER = false
OFFLINE_MODE = true
[database]
DB_TYPE = sqlite3
PATH = {tmp}/data/gitea.db
; The default 500 ms lock wait is too short on a loaded two-core machine: a token lookup that
; meets a locked database answers 401, as a make test in CI once did.
SQLITE_TIMEOUT = 30000
SQLITE_JOURNAL_MODE = WAL
[repository]
ROOT = {tmp}/repos
DEFAULT_BRANCH = main
[security]
INSTALL_LOCK = true
INTERNAL_TOKEN = {secrets["INTERNAL_TOKEN"]}
SECRET_KEY = {secrets["SECRET_KEY"]}
[oauth2]
JWT_SECRET = {secrets["JWT_SECRET"]}
[service]
DISABLE_REGISTRATION = true
[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false
[queue]
TYPE = channel
[mailer]
ENABLED = false
[session]
PROVIDER = memory
[cron.update_checker]
ENABLED = false
[log]
MODE = file
LEVEL = Info
ROOT_PATH = {tmp}/log
""")
        self._gitea("migrate")
        self._gitea(
            "admin",
            "user",
            "create",
            "--admin",
            "--username",
            USER,
            "--password",
            "Passw0rd-not-secret",
            "--email",
            "forgeadmin@example.invalid",
            "--must-change-password=false",
        )
        self.token = self._new_token()
        self._log = open(tmp / "web.log", "ab")  # noqa: SIM115 - the server's stdout until stop() closes it
        self.proc = subprocess.Popen(
            [str(folder / "gitea"), "--config", str(self.config), "--work-path", str(tmp / "work"), "web"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        kit.wait_for(self._up, 60, "Gitea to answer")
        for _ in range(3):  # seen once in CI: every request with the token answered 401
            status, _ = self.api("GET", "/user")
            if status == 200:
                break
            self.token = self._new_token()
        assert status == 200, f"Gitea refuses the access token ({status}): {self.log_tail()}"

    def _new_token(self) -> str:
        self._tokens = getattr(self, "_tokens", 0) + 1  # a token name is used once
        made = self._gitea(
            "admin",
            "user",
            "generate-access-token",
            "--username",
            USER,
            "--token-name",
            f"t{self._tokens}",
            "--scopes",
            "write:repository,write:user,write:issue,write:organization",
            "--raw",
        )
        # the token's own line: on a loaded machine the CLI may log after it (a slow query, say),
        # and a log line taken for the token made every request of a CI run answer 401
        tokens = re.findall(r"^[0-9a-f]{40}$", made.stdout, re.MULTILINE)
        assert tokens, f"no access token in the output of generate-access-token: {made.stdout!r} {made.stderr!r}"
        return tokens[-1]

    def _gitea(self, *args: str, config: bool = True) -> subprocess.CompletedProcess[str]:
        cfg = ["--config", str(self.config), "--work-path", str(self.tmp / "work")] if config else []
        return subprocess.run(
            [str(binary() / "gitea"), *cfg, *args],
            env=self.env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )

    def log_tail(self) -> str:
        return "".join(
            p.read_text(errors="replace")[-2000:] for p in [self.tmp / "web.log", *(self.tmp / "log").glob("*.log")]
        )

    def _up(self) -> bool:
        assert self.proc.poll() is None, self.log_tail()
        try:
            return self.api("GET", "/version")[0] == 200
        except OSError:
            return False

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        req = urllib.request.Request(
            f"{self.url}/api/v1{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw else None

    def create_repo(self, name: str, owner: str = USER) -> str:
        """A repository of the admin user, or of an organisation (made on first use) named `owner`."""
        body = {"name": name, "auto_init": False, "default_branch": "main", "private": owner != USER}
        if owner == USER:
            status, _ = self.api("POST", "/user/repos", body)
        else:
            if self.api("GET", f"/orgs/{owner}")[0] == 404:
                assert self.api("POST", "/orgs", {"username": owner, "visibility": "private"})[0] == 201
            status, _ = self.api("POST", f"/orgs/{owner}/repos", body)
        assert status == 201, (status, self.log_tail())
        return f"{self.url}/{owner}/{name}.git"

    def project(self, tmp: Path, name: str) -> tuple[str, Path, Path]:
        """A new repository, a credentials folder for the operator (a file named after the host, as
        a Secret key would be), and a person's empty clone: (clone URL, credentials, clone)."""
        repo = self.create_repo(name)
        creds = tmp / f"credentials-{name}"
        creds.mkdir()
        (creds / self.credential_key).write_text(self.token + "\n")
        work = tmp / f"work-{name}"
        (work / "deploy").mkdir(parents=True)
        self.git(work, "init", "-q", "-b", "main")
        self.git(work, "remote", "add", "origin", repo)
        return repo, creds, work

    @property
    def credential_key(self) -> str:
        """The credentials directory's entry for this forge: the host and its port."""
        return f"127.0.0.1_{self.port}"

    def rule(self, namespace_glob: str, owner: str = USER) -> str:
        """A --git-allowed-repo rule letting those namespaces revert in this forge's repositories of `owner`."""
        return f"{namespace_glob}=http://127.0.0.1:{self.port}/{owner}/*"

    def revert_args(self, creds: Path, namespace_glob: str = "*") -> tuple[str, ...]:
        return ("--git-credentials-dir", str(creds), "--git-allowed-repo", self.rule(namespace_glob))

    def git(self, work: Path, *args: str) -> str:
        """git as the test's own user (a person or CI pushing), authenticated by header."""
        basic = base64.b64encode(f"{USER}:{self.token}".encode()).decode()
        env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": "dev",
            "GIT_AUTHOR_EMAIL": "dev@x.invalid",
            "GIT_COMMITTER_NAME": "dev",
            "GIT_COMMITTER_EMAIL": "dev@x.invalid",
        }
        return subprocess.run(
            ["git", "-c", f"http.extraHeader=Authorization: Basic {basic}", *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()
