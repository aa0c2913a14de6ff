"""The forges' pull request APIs behind one small interface, one adapter per forge."""
import json
from typing import Protocol

import urllib3

TIMEOUT = 30


class ForgeError(Exception):
    def __init__(self, status: int, message: str, retry_after: float | None = None):
        super().__init__(f"{status}: {message}" if status else message)
        self.status, self.retry_after = status, retry_after


class Forge(Protocol):
    def default_branch(self, owner: str, name: str) -> str: ...

    def find_open(self, owner: str, name: str, head: str, base: str) -> str | None: ...

    def open(self, owner: str, name: str, head: str, base: str, title: str, body: str) -> str: ...


_http = urllib3.PoolManager(num_pools=4, maxsize=4)


def _request(method: str, url: str, headers: dict[str, str], body: dict | None = None) -> tuple[int, object]:
    try:
        r = _http.request(method, url, headers={**headers, "Accept": "application/json",
                                                "Content-Type": "application/json"},
                          body=json.dumps(body).encode() if body is not None else None, retries=False,
                          timeout=urllib3.Timeout(connect=10, read=TIMEOUT))
    except urllib3.exceptions.HTTPError as e:
        raise ForgeError(0, f"no answer from {url.split('/api/')[0]}: {type(e).__name__}") from None
    try:
        data = json.loads(r.data) if r.data else None
    except ValueError:
        data = None
    return r.status, data


class Gitea:
    """Gitea and Forgejo, REST API v1."""

    def __init__(self, api: str, token: str):
        self.api, self._headers = api.rstrip("/"), {"Authorization": f"token {token}"}

    def _call(self, method: str, path: str, body: dict | None = None, ok: tuple[int, ...] = (200, 201)):
        status, data = _request(method, self.api + path, self._headers, body)
        if status not in ok:
            message = data.get("message") if isinstance(data, dict) else None
            raise ForgeError(status, message or "unexpected answer")
        return status, data

    def default_branch(self, owner: str, name: str) -> str:
        return self._call("GET", f"/repos/{owner}/{name}")[1]["default_branch"]

    def find_open(self, owner: str, name: str, head: str, base: str) -> str | None:
        # Gitea's list has no ?head= filter; this endpoint finds the pull request of a branch pair.
        status, data = self._call("GET", f"/repos/{owner}/{name}/pulls/{base}/{head}", ok=(200, 404))
        return data["html_url"] if status == 200 and data.get("state") == "open" else None

    def open(self, owner: str, name: str, head: str, base: str, title: str, body: str) -> str:
        status, data = self._call("POST", f"/repos/{owner}/{name}/pulls",
                                  {"head": head, "base": base, "title": title, "body": body}, ok=(201, 409))
        if status == 409:  # "pull request already exists for these targets"
            url = self.find_open(owner, name, head, base)
            if url:
                return url
            raise ForgeError(409, "a pull request for this branch exists but is not open")
        return data["html_url"]


def for_source(provider: str, repo_url: str, token: str, api_bases: dict[str, str]) -> Forge:
    import urllib.parse
    url = urllib.parse.urlsplit(repo_url)
    if provider == "gitea":
        return Gitea(api_bases.get(url.hostname or "") or f"{url.scheme}://{url.netloc}/api/v1", token)
    raise ForgeError(0, f"the {provider} adapter is not built yet; gitea (and Forgejo) are supported")
