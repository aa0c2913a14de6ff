"""Credentials for a repository, from the credentials directory (a mounted Secret), read at use.

An entry is named after the repository's host (`git.example.com`), `HOST_PORT` when the URL names a
port (`127.0.0.1_3000`: a Secret key cannot hold `:` and `_` is never in a hostname), or after a rule's
`credential=NAME`. An entry is a file holding a token; or a folder with `token` (and optionally
`username`); or a folder with a GitHub App's `app-id`, `private-key` and `installation-id`, for which
an installation token is minted per revert, for the one repository and the permissions a revert needs.
Errors are forge.ForgeError and never hold a token or a key."""

import re
import urllib.parse
from pathlib import Path

from autorollback.gitrevert import forge

APP_FILES = ("app-id", "private-key", "installation-id")
# What a revert needs: push a branch, open a pull request (metadata: read comes with any token).
APP_PERMISSIONS = {"contents": "write", "pull_requests": "write"}
MAX_BYTES = 64 * 1024  # a token or a PEM key is far smaller: anything bigger is not one

_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")  # what a Secret key may be, less `..` and a leading `.`
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space: what goes into a header or to git


def key(repo_url: str) -> str:
    """The entry name for a repository URL: its host, `HOST_PORT` when the URL names a port."""
    url = urllib.parse.urlsplit(repo_url)
    host = (url.hostname or "").lower()
    try:
        port = url.port
    except ValueError:
        raise forge.ForgeError(
            0, f"the port in {url.scheme}://{url.netloc.rpartition('@')[2]} is not a number"
        ) from None
    if not host or ":" in host:
        raise forge.ForgeError(
            0,
            f"no credentials entry name for the host of {url.netloc.rpartition('@')[2]!r}: "
            "use a rule's credential=NAME",
        )
    return f"{host}_{port}" if port is not None else host


def _usable(entry: str) -> bool:
    return bool(_NAME.fullmatch(entry)) and ".." not in entry


def _read(path: Path, what: str, entry: str) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise forge.ForgeError(0, f"cannot read the {what} of credentials entry {entry} ({type(e).__name__})") from None
    if len(data) > MAX_BYTES:
        raise forge.ForgeError(0, f"the {what} of credentials entry {entry} is larger than {MAX_BYTES} bytes")
    try:
        return data.decode().strip()
    except UnicodeDecodeError:
        raise forge.ForgeError(0, f"the {what} of credentials entry {entry} is not UTF-8 text") from None


def _word(value: str, what: str, entry: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise forge.ForgeError(
            0, f"the {what} of credentials entry {entry} is empty or holds spaces or characters outside printable ASCII"
        )
    return value


def lookup(directory: Path | None, entry: str, provider: str, api: str, owner: str, name: str) -> tuple[str, str]:
    """(username, token) for repository owner/name on a forge of this provider whose API is at api."""
    if directory is None:
        raise forge.ForgeError(0, "the operator runs without --git-credentials-dir")
    if not _usable(entry):
        raise forge.ForgeError(
            0,
            f"{entry[:80]!r} cannot name a credentials entry: letters, digits, '-', '_' "
            "and '.', not first and never '..'",
        )
    path = directory / entry  # a file (a Secret key) or a folder; read now, so a rotated Secret is used
    default_user = forge.USERNAMES.get(provider, "autorollback")
    if path.is_dir():
        app = [f for f in APP_FILES if (path / f).exists()]
        if app:
            if provider != "github":
                raise forge.ForgeError(0, f"credentials entry {entry} is a GitHub App, for a {provider} repository")
            if len(app) < len(APP_FILES) or (path / "token").exists():
                raise forge.ForgeError(
                    0,
                    f"credentials entry {entry}: a GitHub App needs app-id, private-key and "
                    "installation-id, and no token beside them",
                )
            app_id = _read(path / "app-id", "app-id", entry)
            installation = _read(path / "installation-id", "installation-id", entry)
            private_key = _read(path / "private-key", "private-key", entry)
            if not re.fullmatch(r"[A-Za-z0-9.]+", app_id) or not installation.isdigit() or not installation.isascii():
                raise forge.ForgeError(
                    0,
                    f"credentials entry {entry}: app-id must be the App's ID or client ID and installation-id a number",
                )
            if not private_key:
                raise forge.ForgeError(0, f"credentials entry {entry}: the private-key is empty")
            token = forge.github_app_token(api, app_id, private_key, installation, owner, name, APP_PERMISSIONS)
            return default_user, token
        if not (path / "token").exists():
            raise forge.ForgeError(
                0,
                f"credentials entry {entry} is a folder without a token file (or a GitHub "
                "App's app-id, private-key and installation-id)",
            )
        token = _word(_read(path / "token", "token", entry), "token", entry)
        user = _read(path / "username", "username", entry) if (path / "username").exists() else ""
        return (_word(user, "username", entry) if user else default_user), token
    if not path.exists():
        raise forge.ForgeError(
            0,
            f"no credentials entry {entry}: expected a file {entry} (the token) or a folder "
            f"{entry}/ in the credentials directory (the chart mounts it from "
            "gitRevert.secretName)",
        )
    return default_user, _word(_read(path, "token", entry), "token", entry)
