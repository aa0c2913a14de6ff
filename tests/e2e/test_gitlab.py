"""The GitLab adapter (python-gitlab) against a stateful fake built from GitLab's documented
merge request API (https://docs.gitlab.com/api/merge_requests/): a duplicate is 409."""

import time
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from autorollback.gitrevert import forge

from .fakes import JsonHandler, serve

PROJECT = "/api/v4/projects/octo%2Fshop"


class Fake(JsonHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        self.state["requests"].append(("GET", url.path, q, self.headers.get("PRIVATE-TOKEN")))
        if url.path == PROJECT:
            return self._send(200, {"id": 7, "path_with_namespace": "octo/shop", "default_branch": "develop"})
        if url.path == PROJECT + "/merge_requests":
            found = [
                m
                for m in self.state["mrs"]
                if m["state"] == q.get("state", ["opened"])[0]
                and m["source_branch"] == q.get("source_branch", [""])[0]
                and m["target_branch"] == q.get("target_branch", [""])[0]
            ]
            return self._send(200, found)
        self._send(404, {"message": "404 Project Not Found"})

    def do_POST(self) -> None:
        body = self._body()
        self.state["requests"].append(
            ("POST", unquote(urlsplit(self.path).path), body, self.headers.get("PRIVATE-TOKEN"))
        )
        if self.state["limits"]:
            self.state["limits"].pop()
            return self._send(429, {"message": "429 Too Many Requests"}, {"Retry-After": "1"})
        if urlsplit(self.path).path != PROJECT + "/merge_requests":
            return self._send(404, {"message": "404 Not Found"})
        if any(m["source_branch"] == body["source_branch"] and m["state"] == "opened" for m in self.state["mrs"]):
            return self._send(
                409, {"message": ["Another open merge request already exists for this source branch: !1"]}
            )
        n = len(self.state["mrs"]) + 1
        mr = {
            "iid": n,
            "state": "opened",
            "web_url": f"https://gitlab.example.com/octo/shop/-/merge_requests/{n}",
            "source_branch": body["source_branch"],
            "target_branch": body["target_branch"],
            "title": body["title"],
            "description": body["description"],
        }
        self.state["mrs"].append(mr)
        self._send(201, mr)


@pytest.fixture
def fake():
    state = {"mrs": [], "requests": [], "limits": []}
    with serve(Fake, state) as url:
        yield f"{url}/api/v4", state


def test_opens_one_merge_request_and_a_duplicate_is_the_existing_one(fake) -> None:
    api, state = fake
    gl = forge.GitLab(api, "glpat-token")
    assert gl.default_branch("octo", "shop") == "develop"
    assert gl.find_open("octo", "shop", "autorollback/revert-abc", "develop") is None
    url = gl.open("octo", "shop", "autorollback/revert-abc", "develop", 'Revert "x"', "why")
    assert url.endswith("/merge_requests/1")
    assert gl.open("octo", "shop", "autorollback/revert-abc", "develop", 'Revert "x"', "why") == url  # 409
    assert len(state["mrs"]) == 1
    posts = [r for r in state["requests"] if r[0] == "POST"]
    assert posts[0][2] == {
        "source_branch": "autorollback/revert-abc",
        "target_branch": "develop",
        "title": 'Revert "x"',
        "description": "why",
    }
    assert all(r[3] == "glpat-token" for r in state["requests"])  # the token in its header, nowhere else


def test_a_429_is_waited_out(fake) -> None:
    api, state = fake
    state["limits"].append("once")
    started = time.monotonic()
    assert forge.GitLab(api, "t").open("octo", "shop", "b", "develop", "t", "d")
    assert len([r for r in state["requests"] if r[0] == "POST"]) == 2 and time.monotonic() - started >= 0.9


def test_the_api_base_follows_the_convention() -> None:
    assert (
        forge.api_base("gitlab", "https://gitlab.example.com/octo/shop.git", {}) == "https://gitlab.example.com/api/v4"
    )
    assert forge.api_base("github", "https://github.com/octo/shop.git", {}) == "https://api.github.com"
    assert forge.api_base("github", "https://ghe.example.com/octo/shop.git", {}) == "https://ghe.example.com/api/v3"
    assert (
        forge.api_base("gitea", "https://git.example.com/octo/shop.git", {"git.example.com": "https://x/api"})
        == "https://x/api"
    )


class Elsewhere(JsonHandler):
    """Another host: records whatever reaches it."""

    def do_GET(self) -> None:
        self.state["reached"].append(("GET", self.path, self.headers.get("PRIVATE-TOKEN")))
        self._send(200, {"id": 7, "default_branch": "stolen", "web_url": "https://elsewhere/x"})

    do_POST = do_GET


class Redirecting(JsonHandler):
    """A GitLab (or something in front of it) answering every request with a 302 to another host."""

    def _redirect(self) -> None:
        self.state["requests"].append((self.command, self.path, self.headers.get("PRIVATE-TOKEN")))
        self.send_response(302)
        self.send_header("Location", self.state["to"] + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _redirect


@pytest.mark.parametrize("call", ["default_branch", "find_open", "open"])
def test_a_redirect_to_another_host_is_not_followed_with_the_token(call: str) -> None:
    elsewhere: dict = {"reached": []}
    with serve(Elsewhere, elsewhere) as other:
        state = {"requests": [], "to": other.replace("127.0.0.1", "localhost")}  # another host name, same machine
        with serve(Redirecting, state) as url:
            gl = forge.GitLab(f"{url}/api/v4", "glpat-secret")
            with pytest.raises(forge.ForgeError) as e:
                {
                    "default_branch": lambda: gl.default_branch("octo", "shop"),
                    "find_open": lambda: gl.find_open("octo", "shop", "b", "develop"),
                    "open": lambda: gl.open("octo", "shop", "b", "develop", "t", "d"),
                }[call]()
    assert state["requests"] and state["requests"][0][2] == "glpat-secret"  # it did ask the forge
    assert elsewhere["reached"] == []  # and nothing, token or not, went to the other host
    assert e.value.status == 302 and "redirect" in str(e.value) and "glpat-secret" not in str(e.value)
