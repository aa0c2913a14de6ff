"""The credentials directory: entry names, the token file and folder forms, GitHub Apps scoped to one
repository, and errors that never show a token or a key."""

from pathlib import Path

import pytest

from autorollback.gitrevert import credentials, forge

API = "https://api.github.com"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://git.example.com/team/shop.git", "git.example.com"),
        ("https://Git.Example.COM/team/shop.git", "git.example.com"),
        ("http://127.0.0.1:3000/team/shop.git", "127.0.0.1_3000"),
        ("https://git.example.com:443/team/shop.git", "git.example.com_443"),  # named, so part of the key
        ("https://gitlab.example.com:8443/a/b/c.git", "gitlab.example.com_8443"),
    ],
)
def test_key_is_the_host_and_the_port_when_named(url: str, expected: str) -> None:
    assert credentials.key(url) == expected


@pytest.mark.parametrize("url", ["https://git.example.com:x/a/b.git", "https://[::1]:3000/a/b.git", "/a/b"])
def test_key_refuses_what_names_no_entry(url: str) -> None:
    with pytest.raises(forge.ForgeError):
        credentials.key(url)


def test_a_file_is_the_token_with_the_providers_username(tmp_path: Path) -> None:
    (tmp_path / "git.example.com").write_text("s3cret\n")
    assert credentials.lookup(tmp_path, "git.example.com", "gitea", "", "team", "shop") == ("autorollback", "s3cret")
    assert credentials.lookup(tmp_path, "git.example.com", "gitlab", "", "team", "shop") == ("oauth2", "s3cret")
    assert credentials.lookup(tmp_path, "git.example.com", "github", "", "team", "shop") == ("x-access-token", "s3cret")


def test_read_at_use_so_a_rotated_secret_is_used(tmp_path: Path) -> None:
    (tmp_path / "127.0.0.1_3000").write_text("old")
    assert credentials.lookup(tmp_path, "127.0.0.1_3000", "gitea", "", "a", "b")[1] == "old"
    (tmp_path / "127.0.0.1_3000").write_text("new")
    assert credentials.lookup(tmp_path, "127.0.0.1_3000", "gitea", "", "a", "b")[1] == "new"


def test_a_secret_mount_with_its_symlinks_works(tmp_path: Path) -> None:
    data = tmp_path / "..2024_01_01_00_00_00.1"  # how the kubelet lays out a mounted Secret
    data.mkdir()
    (data / "gitops-bot").write_text("tok")
    (tmp_path / "..data").symlink_to(data.name)
    (tmp_path / "gitops-bot").symlink_to("..data/gitops-bot")
    assert credentials.lookup(tmp_path, "gitops-bot", "gitea", "", "a", "b") == ("autorollback", "tok")


def test_a_folder_holds_token_and_username(tmp_path: Path) -> None:
    entry = tmp_path / "gitops-bot"
    entry.mkdir()
    (entry / "token").write_text("  tok \n")
    assert credentials.lookup(tmp_path, "gitops-bot", "gitlab", "", "a", "b") == ("oauth2", "tok")
    (entry / "username").write_text("bot\n")
    assert credentials.lookup(tmp_path, "gitops-bot", "gitlab", "", "a", "b") == ("bot", "tok")
    (entry / "username").write_text("\n")  # empty: the provider's default
    assert credentials.lookup(tmp_path, "gitops-bot", "gitlab", "", "a", "b") == ("oauth2", "tok")


@pytest.mark.parametrize("content", ["", "\n  \n", "two words", "tok\nen", "t\u00f6ken", "x" * 70_000])
def test_an_unusable_token_is_refused_without_showing_it(tmp_path: Path, content: str) -> None:
    (tmp_path / "git.example.com").write_text(content)
    with pytest.raises(forge.ForgeError) as e:
        credentials.lookup(tmp_path, "git.example.com", "gitea", "", "a", "b")
    assert "git.example.com" in str(e.value)
    assert content.strip() == "" or content.strip()[:5] not in str(e.value).replace("git.example.com", "")


def test_an_empty_token_in_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "token").write_text("")
    with pytest.raises(forge.ForgeError, match="token of credentials entry h is empty"):
        credentials.lookup(tmp_path, "h", "gitea", "", "a", "b")


def test_a_missing_entry_says_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(forge.ForgeError, match=r"no credentials entry git\.example\.com_8443"):
        credentials.lookup(tmp_path, "git.example.com_8443", "gitea", "", "a", "b")
    (tmp_path / "folder").mkdir()
    with pytest.raises(forge.ForgeError, match="folder without a token"):
        credentials.lookup(tmp_path, "folder", "gitea", "", "a", "b")
    with pytest.raises(forge.ForgeError, match="without --git-credentials-dir"):
        credentials.lookup(None, "git.example.com", "gitea", "", "a", "b")


@pytest.mark.parametrize(
    "entry",
    ["..", ".", "../outside", "a/b", "/etc/passwd", ".hidden", "..data", "a..b", "", "a b", "a:3000", "a\\b", "a\x00b"],
)
def test_names_that_could_leave_the_directory_are_refused(tmp_path: Path, entry: str) -> None:
    inside = tmp_path / "creds"
    inside.mkdir()
    (tmp_path / "outside").write_text("not-for-you")
    (inside / ".hidden").write_text("hidden")
    with pytest.raises(forge.ForgeError, match="cannot name a credentials entry"):
        credentials.lookup(inside, entry, "gitea", "", "a", "b")


@pytest.fixture
def minted(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    calls: list[tuple] = []

    def fake(*args):
        calls.append(args)
        return "ghs_minted"

    monkeypatch.setattr(forge, "github_app_token", fake)
    return calls


def app(tmp_path: Path, name: str = "github.com", **files: str) -> Path:
    entry = tmp_path / name
    entry.mkdir()
    for f, v in (
        {"app_id": "123\n", "private_key": "-----BEGIN KEY-----\nabc\n", "installation_id": "456\n"} | files
    ).items():
        if v is not None:
            (entry / f.replace("_", "-")).write_text(v)
    return entry


def test_a_github_app_mints_a_token_for_the_one_repository(tmp_path: Path, minted: list) -> None:
    app(tmp_path)
    assert credentials.lookup(tmp_path, "github.com", "github", API, "octo", "shop") == ("x-access-token", "ghs_minted")
    assert minted == [
        (API, "123", "-----BEGIN KEY-----\nabc", "456", "octo", "shop", {"contents": "write", "pull_requests": "write"})
    ]


@pytest.mark.parametrize(
    ("files", "why"),
    [
        ({"installation_id": None}, "needs app-id, private-key and installation-id"),
        ({"token": "tok"}, "no token beside them"),
        ({"installation_id": "45 6"}, "installation-id a number"),
        ({"app_id": "1/2"}, "app-id must be"),
        ({"private_key": ""}, "private-key is empty"),
    ],
)
def test_an_incomplete_github_app_is_refused(tmp_path: Path, minted: list, files: dict, why: str) -> None:
    app(tmp_path, **files)
    with pytest.raises(forge.ForgeError, match=why) as e:
        credentials.lookup(tmp_path, "github.com", "github", API, "octo", "shop")
    assert "BEGIN KEY" not in str(e.value) and not minted


def test_a_github_app_is_for_github_only(tmp_path: Path, minted: list) -> None:
    app(tmp_path, "gitlab.example.com")
    with pytest.raises(forge.ForgeError, match="is a GitHub App"):
        credentials.lookup(tmp_path, "gitlab.example.com", "gitlab", "", "octo", "shop")
    assert not minted


def test_a_malformed_app_key_is_named_never_shown(tmp_path: Path) -> None:
    app(tmp_path, private_key="not-a-key-at-all")
    with pytest.raises(forge.ForgeError, match="unusable") as e:  # before any request is made
        credentials.lookup(tmp_path, "github.com", "github", "http://127.0.0.1:9", "octo", "shop")
    assert "not-a-key" not in str(e.value)
