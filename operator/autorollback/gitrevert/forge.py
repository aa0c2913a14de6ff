"""The forges' pull request APIs behind one small interface, one adapter per forge."""

import json
import time
import urllib.parse
from typing import Protocol

import urllib3

from autorollback import retry

TIMEOUT = 30
RETRIES = 4


class ForgeError(Exception):
    def __init__(self, status: int, message: str, retry_after: float | None = None):
        super().__init__(f"{status}: {message}" if status else message)
        self.status, self.retry_after = status, retry_after


class Forge(Protocol):
    def default_branch(self, owner: str, name: str) -> str: ...

    def find_open(self, owner: str, name: str, head: str, base: str) -> str | None: ...

    def open(self, owner: str, name: str, head: str, base: str, title: str, body: str) -> str: ...


_http = urllib3.PoolManager(num_pools=4, maxsize=4)
REDIRECTED = (
    "the server answered with a redirect, which is not followed (a token goes to no other address): "
    "is the API base right?"
)


def _request(
    method: str, url: str, headers: dict[str, str], body: dict | None = None
) -> tuple[int, object, float | None]:
    try:
        r = _http.request(
            method,
            url,
            headers={**headers, "Accept": "application/json", "Content-Type": "application/json"},
            body=json.dumps(body).encode() if body is not None else None,
            retries=False,
            timeout=urllib3.Timeout(connect=10, read=TIMEOUT),
        )
    except urllib3.exceptions.HTTPError as e:
        raise ForgeError(0, f"no answer from {url.split('/api/', maxsplit=1)[0]}: {type(e).__name__}") from None
    try:
        data = json.loads(r.data) if r.data else None
    except ValueError:
        data = None
    try:
        retry_after = float(r.headers.get("Retry-After"))
    except (TypeError, ValueError):
        retry_after = None
    return r.status, data, retry_after


def _call(
    method: str, url: str, headers: dict[str, str], body: dict | None = None, ok: tuple[int, ...] = (200, 201)
) -> tuple[int, object]:
    """One request, tried again on the server's trouble or a rate limit; a redirect is an error."""
    for attempt in range(RETRIES):
        status, data, retry_after = _request(method, url, headers, body)
        if status not in (429, 502, 503, 504) or attempt == RETRIES - 1:
            break
        time.sleep(min(retry.delay(attempt, retry_after), 30))
    if status not in ok:
        message = data.get("message") if isinstance(data, dict) else None
        raise ForgeError(status, REDIRECTED if 300 <= status < 400 else message or "unexpected answer")
    return status, data


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


class Gitea:
    """Gitea and Forgejo, REST API v1."""

    def __init__(self, api: str, token: str):
        self.api, self._headers = api.rstrip("/"), {"Authorization": f"token {token}"}

    def _call(self, method: str, path: str, body: dict | None = None, ok: tuple[int, ...] = (200, 201)):
        return _call(method, self.api + path, self._headers, body, ok)

    def default_branch(self, owner: str, name: str) -> str:
        data = self._call("GET", f"/repos/{_q(owner)}/{_q(name)}")[1]
        if not isinstance(data, dict) or not data.get("default_branch"):
            raise ForgeError(0, "the forge's answer has no default_branch: is the API base right?")
        return data["default_branch"]

    def find_open(self, owner: str, name: str, head: str, base: str) -> str | None:
        # Gitea's list has no ?head= filter: list the open ones into the base and look.
        query = urllib.parse.urlencode({"state": "open", "base_branch": base, "limit": 50})
        for page in range(1, 21):
            _, data = self._call("GET", f"/repos/{_q(owner)}/{_q(name)}/pulls?{query}&page={page}")
            for pr in data or []:
                if (pr.get("head") or {}).get("ref") == head and (pr.get("base") or {}).get("ref") == base:
                    return pr["html_url"]
            if len(data or []) < 50:
                return None
        return None

    def open(self, owner: str, name: str, head: str, base: str, title: str, body: str) -> str:
        status, data = self._call(
            "POST",
            f"/repos/{_q(owner)}/{_q(name)}/pulls",
            {"head": head, "base": base, "title": title, "body": body},
            ok=(201, 409),
        )
        if status == 409:  # "pull request already exists for these targets"
            url = self.find_open(owner, name, head, base)
            if url:
                return url
            raise ForgeError(409, "a pull request for this branch exists but is closed: reopen it or delete the branch")
        return data["html_url"]


class GitHub:
    """GitHub and GitHub Enterprise, through PyGithub (which honours Retry-After and GitHub's
    rate-limit headers, primary and secondary, with its GithubRetry)."""

    def __init__(self, api: str, token: str):
        from github import Auth, Github, GithubRetry

        self._gh = Github(
            base_url=api.rstrip("/"),
            auth=Auth.Token(token),
            timeout=TIMEOUT,
            retry=GithubRetry(total=5, backoff_factor=1, max_rate_limit_wait=120, secondary_rate_wait=60),
            per_page=30,
            lazy=True,
        )

    def _repo(self, owner: str, name: str):
        return self._gh.get_repo(f"{owner}/{name}")  # lazy: paths from our base URL, not from answers

    @staticmethod
    def _error(e: Exception) -> ForgeError:
        data = getattr(e, "data", None)
        message = data.get("message") if isinstance(data, dict) else None
        errors = data.get("errors") if isinstance(data, dict) else None
        detail = "; ".join(str(x.get("message", x)) if isinstance(x, dict) else str(x) for x in errors or [])
        return ForgeError(getattr(e, "status", 0) or 0, " ".join(filter(None, [message, detail])) or type(e).__name__)

    def default_branch(self, owner: str, name: str) -> str:
        from github import GithubException

        try:
            return self._repo(owner, name).default_branch
        except GithubException as e:
            raise self._error(e) from None

    def find_open(self, owner: str, name: str, head: str, base: str) -> str | None:
        from github import GithubException

        try:
            for pr in self._repo(owner, name).get_pulls(state="open", head=f"{owner}:{head}", base=base):
                return pr.html_url
        except GithubException as e:
            raise self._error(e) from None
        return None

    def open(self, owner: str, name: str, head: str, base: str, title: str, body: str) -> str:
        from github import GithubException

        try:
            return self._repo(owner, name).create_pull(base=base, head=head, title=title, body=body).html_url
        except GithubException as e:
            error = self._error(e)
            if e.status == 422 and "already exists" in str(error):  # GitHub's answer to a duplicate
                url = self.find_open(owner, name, head, base)
                if url:
                    return url
            raise error from None


def _no_redirects_session():
    import requests

    class NoRedirects(requests.Session):
        def request(self, *args, **kwargs):  # a 3xx comes back as the answer, not followed
            kwargs["allow_redirects"] = False
            return super().request(*args, **kwargs)

    return NoRedirects()


class GitLab:
    """GitLab merge requests, through python-gitlab (which waits out 429s, honouring Retry-After)."""

    def __init__(self, api: str, token: str):
        import gitlab

        root = api.rstrip("/").removesuffix("/api/v4")
        # python-gitlab obeys 429 Retry-After on every request by default (obey_rate_limit, max_retries).
        # Its requests.Session would follow redirects, to any host, with PRIVATE-TOKEN (requests drops
        # only Authorization on a cross-host redirect): this one follows none, so a 3xx is an error;
        # keep_base_url: pagination links from answers are put back on our base URL.
        self._gl = gitlab.Gitlab(
            url=root,
            private_token=token,
            timeout=TIMEOUT,
            retry_transient_errors=True,
            keep_base_url=True,
            session=_no_redirects_session(),
        )

    def _project(self, owner: str, name: str):
        return self._gl.projects.get(f"{owner}/{name}", lazy=True)

    @staticmethod
    def _error(e: Exception) -> ForgeError:
        status = getattr(e, "response_code", 0) or 0
        if 300 <= status < 400:
            return ForgeError(status, REDIRECTED)
        return ForgeError(status, str(getattr(e, "error_message", "") or type(e).__name__))

    def default_branch(self, owner: str, name: str) -> str:
        import gitlab

        try:
            return self._gl.projects.get(f"{owner}/{name}").default_branch
        except gitlab.GitlabError as e:
            raise self._error(e) from None

    def find_open(self, owner: str, name: str, head: str, base: str) -> str | None:
        import gitlab

        try:
            found = self._project(owner, name).mergerequests.list(
                state="opened", source_branch=head, target_branch=base, get_all=False
            )
        except gitlab.GitlabError as e:
            raise self._error(e) from None
        return found[0].web_url if found else None

    def open(self, owner: str, name: str, head: str, base: str, title: str, body: str) -> str:
        import gitlab

        try:
            return (
                self._project(owner, name)
                .mergerequests.create(
                    {"source_branch": head, "target_branch": base, "title": title, "description": body}
                )
                .web_url
            )
        except gitlab.GitlabError as e:
            if getattr(e, "response_code", None) == 409:  # "Another open merge request already exists"
                url = self.find_open(owner, name, head, base)
                if url:
                    return url
            raise self._error(e) from None


def github_app_token(
    api: str, app_id: str, private_key: str, installation_id: str, owner: str, name: str, permissions: dict[str, str]
) -> str:
    """A GitHub App installation token (valid for an hour), minted for one revert: for the one
    repository `name` (of the installation's account, which must be `owner`) and only `permissions`.
    PyGithub's GithubIntegration.get_access_token cannot name repositories (PyGithub 2.10), so the
    request is made here, through the same no-redirect client as the Gitea adapter."""
    from github import Auth

    try:
        jwt = Auth.AppAuth(app_id, private_key).create_jwt()
    except Exception as e:  # noqa: BLE001 - a malformed key or id (jwt, cryptography): say which, never what
        raise ForgeError(0, f"the GitHub App credentials are unusable ({type(e).__name__})") from None
    url = f"{api.rstrip('/')}/app/installations/{_q(str(installation_id))}/access_tokens"
    _, data = _call(
        "POST",
        url,
        {"Authorization": f"Bearer {jwt}", "X-GitHub-Api-Version": "2022-11-28"},
        {"repositories": [name], "permissions": dict(permissions)},
        ok=(201,),
    )
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise ForgeError(0, "GitHub's answer to the installation token request has no token")
    granted = data.get("repositories")
    if (
        isinstance(granted, list)
        and granted
        and not any(
            isinstance(r, dict) and str(r.get("full_name", "")).lower() == f"{owner}/{name}".lower() for r in granted
        )
    ):
        raise ForgeError(
            0,
            f"the GitHub App installation {installation_id} gave a token for another repository "
            f"than {owner}/{name}: is it installed on {owner}?",
        )
    return token


USERNAMES = {"github": "x-access-token", "gitlab": "oauth2", "gitea": "autorollback"}


def api_base(provider: str, repo_url: str, api_bases: dict[str, str]) -> str:
    """Each forge's convention from the repository's host, unless configured for that host."""
    import urllib.parse

    url = urllib.parse.urlsplit(repo_url)
    if api_bases.get(url.hostname or ""):
        return api_bases[url.hostname]
    root = f"{url.scheme}://{url.netloc}"
    if provider == "github":
        return "https://api.github.com" if url.hostname == "github.com" else f"{root}/api/v3"
    if provider == "gitlab":
        return f"{root}/api/v4"
    return f"{root}/api/v1"


def for_source(provider: str, repo_url: str, token: str, api_bases: dict[str, str]) -> Forge:
    api = api_base(provider, repo_url, api_bases)
    if provider == "gitea":
        return Gitea(api, token)
    if provider == "github":
        return GitHub(api, token)
    if provider == "gitlab":
        return GitLab(api, token)
    raise ForgeError(0, f"no adapter for {provider}")
