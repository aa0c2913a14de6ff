"""The GitHub adapter: every request validated against GitHub's published API description
(@octokit/openapi, served by Prism), and GitHub's own answers (duplicates, no commits, rate limits)
from a small stateful fake built from GitHub's documented responses."""

import json
import subprocess
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from autorollback.gitrevert import credentials, forge

from . import kit
from .fakes import JsonHandler, serve


def prism_folder():
    v = kit._versions()
    folder = kit.cache() / "npm" / f"prism-{v['PRISM_VERSION']}-octokit-{v['OCTOKIT_OPENAPI_VERSION']}"
    if not (folder / "node_modules/.bin/prism").exists():
        raise AssertionError(f"{folder} is missing: run `make tools`")
    return folder


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory):
    folder, port = prism_folder(), kit.free_port()
    with open(tmp_path_factory.mktemp("prism") / "prism.log", "wb") as log:  # the process keeps its own copy
        proc = subprocess.Popen(
            [
                str(folder / "node_modules/.bin/prism"),
                "mock",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                str(folder / "node_modules/@octokit/openapi/generated/api.github.com.json"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def up() -> bool:
        assert proc.poll() is None, "prism exited"
        try:
            return kit.http_get(f"http://127.0.0.1:{port}/meta")[0] < 500
        except OSError:
            return False

    kit.wait_for(up, 120, "prism to serve GitHub's API description")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def test_every_request_matches_githubs_api_description(prism: str) -> None:
    gh = forge.GitHub(prism, "a-token")
    assert gh.default_branch("octo", "shop")  # GET /repos/{owner}/{repo}
    assert gh.find_open("octo", "shop", "autorollback/revert-0123456789ab", "main").startswith("https://")
    assert gh.open("octo", "shop", "autorollback/revert-0123456789ab", "main", 'Revert "x"', "why").startswith(
        "https://"
    )


def test_the_validation_can_fail(prism: str) -> None:
    # the same client and connection, one wrong field type: Prism answers 422 with the violation
    from github import GithubException

    gh = forge.GitHub(prism, "a-token")
    with pytest.raises(GithubException) as e:
        gh._gh.requester.requestJsonAndCheck("POST", "/repos/octo/shop/pulls", input={"head": 5, "base": "main"})
    assert e.value.status == 422


class Fake(JsonHandler):
    """GitHub's answers, as documented: https://docs.github.com/en/rest/pulls/pulls"""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.state["requests"].append(("GET", url.path, parse_qs(url.query)))
        self.state["auth"].append(self.headers.get("Authorization"))
        if url.path == "/repos/octo/shop":
            return self._send(
                200,
                {
                    "full_name": "octo/shop",
                    "default_branch": "trunk",
                    "url": f"http://{self.headers['Host']}/repos/octo/shop",
                },
            )
        if url.path == "/repos/octo/shop/pulls":
            q = parse_qs(url.query)
            found = [
                p
                for p in self.state["pulls"]
                if f"octo:{p['head']['ref']}" == q.get("head", [""])[0]
                and p["base"]["ref"] == q.get("base", [""])[0]
                and p["state"] == q.get("state", ["open"])[0]
            ]
            return self._send(200, found)
        self._send(404, {"message": "Not Found"})

    def do_POST(self) -> None:
        body = self._body()
        self.state["requests"].append(("POST", self.path, body))
        self.state["auth"].append(self.headers.get("Authorization"))
        if self.path == "/app/installations/456/access_tokens":  # GitHub App: a JWT in, a token out
            import jwt

            claims = jwt.decode(
                self.headers["Authorization"].removeprefix("Bearer "),
                self.state["app_public_key"],
                algorithms=["RS256"],
            )
            assert claims["iss"] == "123"
            granted = [{"full_name": f"{self.state.get('account', 'octo')}/{r}"} for r in body.get("repositories", [])]
            return self._send(
                201,
                {
                    "token": "ghs_installation",
                    "expires_at": "2099-01-01T00:00:00Z",
                    "permissions": body.get("permissions") or {"contents": "write", "issues": "write"},
                    **({"repositories": granted} if granted else {}),
                },
            )
        limits = self.state["limits"]
        if limits:
            kind = limits.pop(0)
            if kind == "primary":
                return self._send(
                    403,
                    {"message": "API rate limit exceeded for user ID 1."},
                    {
                        "x-ratelimit-remaining": "0",
                        "x-ratelimit-limit": "5000",
                        "x-ratelimit-reset": str(int(time.time()) + 1),
                    },
                )
            return self._send(
                403,
                {
                    "message": "You have exceeded a secondary rate limit. Please wait a few "
                    "minutes before you try again."
                },
                {"retry-after": "1"},
            )
        if body["head"] == "empty":
            return self._send(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [
                        {"resource": "PullRequest", "code": "custom", "message": "No commits between trunk and empty"}
                    ],
                },
            )
        if any(p["head"]["ref"] == body["head"] and p["state"] == "open" for p in self.state["pulls"]):
            return self._send(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"A pull request already exists for octo:{body['head']}.",
                        }
                    ],
                },
            )
        n = len(self.state["pulls"]) + 1
        pr = {
            "number": n,
            "state": "open",
            "html_url": f"https://github.com/octo/shop/pull/{n}",
            "head": {"ref": body["head"]},
            "base": {"ref": body["base"]},
            "title": body["title"],
        }
        self.state["pulls"].append(pr)
        self._send(201, pr)


@pytest.fixture
def fake():
    state = {"pulls": [], "requests": [], "limits": [], "auth": []}
    with serve(Fake, state) as url:
        yield url, state


def test_a_duplicate_is_the_existing_pull_request(fake) -> None:
    url, state = fake
    gh = forge.GitHub(url, "t")
    assert gh.default_branch("octo", "shop") == "trunk"
    first = gh.open("octo", "shop", "autorollback/revert-abc", "trunk", "t", "b")
    assert gh.open("octo", "shop", "autorollback/revert-abc", "trunk", "t", "b") == first  # 422 "already exists"
    lists = [q for method, path, q in state["requests"] if (method, path) == ("GET", "/repos/octo/shop/pulls")]
    assert any(
        q.get("head") == ["octo:autorollback/revert-abc"] and q.get("base") == ["trunk"] and q.get("state") == ["open"]
        for q in lists
    )  # GitHub's ?head=owner:branch filter


def test_no_commits_is_a_clear_error(fake) -> None:
    url, _ = fake
    with pytest.raises(forge.ForgeError) as e:
        forge.GitHub(url, "t").open("octo", "shop", "empty", "trunk", "t", "b")
    assert e.value.status == 422 and "No commits between trunk and empty" in str(e.value)


@pytest.mark.parametrize("limit", ["primary", "secondary"])
def test_rate_limits_are_waited_out(fake, limit: str) -> None:
    url, state = fake
    state["limits"].append(limit)
    started = time.monotonic()
    assert forge.GitHub(url, "t").open("octo", "shop", "autorollback/revert-abc", "trunk", "t", "b")
    posts = [r for r in state["requests"] if r[0] == "POST"]
    assert len(posts) == 2 and time.monotonic() - started >= 0.5  # waited, then tried again


def app_key() -> tuple[bytes, str]:
    """A fresh RSA key: (public PEM, private PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )


def test_a_github_app_mints_an_installation_token_for_one_repository(fake, tmp_path) -> None:
    url, state = fake
    state["app_public_key"], pem = app_key()
    entry = tmp_path / "github.com"
    entry.mkdir()
    (entry / "app-id").write_text("123\n")
    (entry / "private-key").write_text(pem)
    (entry / "installation-id").write_text("456\n")
    assert credentials.lookup(tmp_path, "github.com", "github", url, "octo", "shop") == (
        "x-access-token",
        "ghs_installation",
    )
    posts = [(path, body) for method, path, body in state["requests"] if method == "POST"]
    assert posts == [
        (
            "/app/installations/456/access_tokens",  # only this repository, only what a revert needs
            {"repositories": ["shop"], "permissions": {"contents": "write", "pull_requests": "write"}},
        )
    ]
    state["account"] = "someone-else"  # installed on another account: its "shop" is not octo/shop
    with pytest.raises(forge.ForgeError, match="installed on octo"):
        credentials.lookup(tmp_path, "github.com", "github", url, "octo", "shop")
    (entry / "private-key").write_text("not a key")
    with pytest.raises(forge.ForgeError) as e:
        credentials.lookup(tmp_path, "github.com", "github", url, "octo", "shop")
    assert "not a key" not in str(e.value) and len(state["requests"]) == 2  # refused before any request


def test_the_installation_token_request_matches_githubs_api_description(prism: str) -> None:
    # Prism validates the body against GitHub's description of "Create an installation access token
    # for an app": repositories (names, at most 500) and permissions (the app-permissions schema).
    _, pem = app_key()
    spec = json.loads((prism_folder() / "node_modules/@octokit/openapi/generated/api.github.com.json").read_text())
    answer = spec["paths"]["/app/installations/{installation_id}/access_tokens"]["post"]["responses"]["201"]
    example = answer["content"]["application/json"]["examples"]["default"]
    example = (
        spec["components"]["examples"][example["$ref"].split("/")[-1]]["value"]
        if "$ref" in example
        else example["value"]
    )
    owner, name = example["repositories"][0]["full_name"].split("/")  # Prism answers with GitHub's example
    token = forge.github_app_token(prism, "123", pem, "456", owner, name, credentials.APP_PERMISSIONS)
    assert token == example["token"]
    # the same request with a field out of the description is refused: the validation is real
    for body in (
        {"repositories": name, "permissions": credentials.APP_PERMISSIONS},
        {"repositories": [name], "permissions": {"contents": "admin"}},
    ):
        with pytest.raises(forge.ForgeError) as e:
            forge._call(
                "POST", f"{prism}/app/installations/456/access_tokens", {"Authorization": "Bearer x"}, body, ok=(201,)
            )
        assert e.value.status == 422, body


class Elsewhere(JsonHandler):
    def do_GET(self) -> None:
        self.state["reached"].append((self.path, self.headers.get("Authorization")))
        self._send(200, {"full_name": "octo/shop", "default_branch": "stolen"})


class Moved(JsonHandler):
    def do_GET(self) -> None:
        self.send_response(self.state["status"])
        self.send_header("Location", self.state["to"] + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.mark.parametrize("status", [301, 302, 307])
def test_pygithub_follows_no_redirect_to_another_host(status: int) -> None:
    elsewhere: dict = {"reached": []}
    with (
        serve(Elsewhere, elsewhere) as other,
        serve(Moved, {"status": status, "to": other.replace("127.0.0.1", "localhost")}) as url,
        pytest.raises(Exception) as e,  # noqa: PT011 - a GithubException or PyGithub's RuntimeError
    ):
        forge.GitHub(url, "ghp-secret").default_branch("octo", "shop")
    assert elsewhere["reached"] == [] and "ghp-secret" not in str(e.value)


def test_field_names_and_parameters_are_githubs_own(fake) -> None:
    # Prism lets unknown body fields through (GitHub's description does not forbid them), so the
    # names the adapter sends are checked against the description here, strictly.
    spec = json.loads((prism_folder() / "node_modules/@octokit/openapi/generated/api.github.com.json").read_text())
    pulls = spec["paths"]["/repos/{owner}/{repo}/pulls"]
    body_schema = pulls["post"]["requestBody"]["content"]["application/json"]["schema"]
    params = {
        (p.get("name") or spec["components"]["parameters"][p["$ref"].split("/")[-1]]["name"])
        for p in pulls["get"]["parameters"]
    }
    url, state = fake
    gh = forge.GitHub(url, "a-token")
    gh.open("octo", "shop", "autorollback/revert-abc", "trunk", "t", "b")
    gh.find_open("octo", "shop", "autorollback/revert-abc", "trunk")
    posts = [body for method, path, body in state["requests"] if method == "POST"]
    lists = [q for method, path, q in state["requests"] if (method, path) == ("GET", "/repos/octo/shop/pulls")]
    assert posts and set(posts[0]) <= set(body_schema["properties"]), set(posts[0]) - set(body_schema["properties"])
    assert lists and all(set(q) <= params for q in lists)
    assert all(a in {"token a-token", "Bearer a-token"} for a in state["auth"])  # every request authenticated
