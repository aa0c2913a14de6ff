"""Which repositories, and which paths in them, a namespace may revert: the platform's rules.

A rule is `NAMESPACE=URL[ paths=GLOB,...][ credential=NAME]`. URLs are parsed and compared part by
part, never as strings: a URL that could mean something else to git, curl or a forge's client
(`..`, percent-encoding, a query, a port the rule does not name) matches nothing.
"""

import fnmatch
import re
import urllib.parse
from dataclasses import dataclass

NAMESPACE = "{namespace}"
_SEGMENT = re.compile(r"^[A-Za-z0-9._~+-]+$")  # what a path segment of a clone URL may hold, unencoded
_HOST = re.compile(r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")  # names and IPv4; no IPv6
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
FORM = "NAMESPACE=URL[ paths=GLOB,...][ credential=NAME], e.g. '*=https://git.example.com/{namespace}/*'"


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Url:
    scheme: str
    host: str
    port: int | None
    segments: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    namespaces: str  # a glob over namespace names
    url: str  # pattern; may hold {namespace}
    paths: tuple[str, ...] = ()  # globs over paths in the repository; empty: any path
    credential: str = ""  # entry of the credentials directory; empty: the host's own

    def __str__(self) -> str:
        """As a tenant may be shown it: the credential's name stays out."""
        options = [f"paths={','.join(self.paths)}"] if self.paths else []
        return " ".join([f"{self.namespaces}={self.url}", *options])


@dataclass(frozen=True)
class Grant:
    rule: Rule
    namespace: str

    @property
    def credential(self) -> str:
        return self.rule.credential

    def allows_path(self, path: str) -> bool:
        """Any path, or one that a glob of the rule covers: the path itself or a folder it is in."""
        if not self.rule.paths:
            return True
        segments = path_segments(path)
        return segments is not None and any(
            _match(_glob(p.replace(NAMESPACE, self.namespace)), segments[:n])
            for p in self.rule.paths
            for n in range(1, len(segments) + 1)
        )


def parse_rule(text: str) -> Rule:
    """One --git-allowed-repo value, or RuleError saying what to write instead."""
    head, *options = text.split() or [""]
    namespaces, sep, url = head.partition("=")
    if not sep or "://" in namespaces or not namespaces or not url:
        raise RuleError(f"--git-allowed-repo {text!r}: rules name the namespaces they are for: {FORM}")
    if not re.fullmatch(r"[a-z0-9*?\[\]!-]+", namespaces):
        raise RuleError(f"--git-allowed-repo {text!r}: {namespaces!r} is not a glob over namespace names")
    paths: tuple[str, ...] = ()
    credential = ""
    keys = [option.partition("=")[0] for option in options]
    if len(set(keys)) < len(keys):
        raise RuleError(f"--git-allowed-repo {text!r}: an option is given twice: {FORM}")
    for option in options:
        key, _, value = option.partition("=")
        if key == "paths" and value:
            paths = tuple(p.strip("/") for p in value.split(",") if p.strip("/"))
            if not paths or any(path_segments(p.replace(NAMESPACE, "ns")) is None for p in paths):
                raise RuleError(
                    f"--git-allowed-repo {text!r}: paths={value} must be relative globs without '.' or '..' segments"
                )
        elif key == "credential" and _NAME.match(value):
            credential = value
        else:
            raise RuleError(f"--git-allowed-repo {text!r}: unknown option {option!r}: {FORM}")
    parsed = pattern(url.replace(NAMESPACE, "ns"))
    if parsed is None or parsed.port == 0:
        raise RuleError(
            f"--git-allowed-repo {text!r}: {url!r} is not an https:// URL pattern "
            "(https://host[:port]/segments, '*' within a segment, '**' for any number of them)"
        )
    return Rule(namespaces, url, paths, credential)


def pattern(text: str) -> Url | None:
    """A rule's URL with its globs: the same strict form as a clone URL, plus `*`."""
    return _parse(text, allow_glob=True)


def parse_url(text: str) -> Url | None:
    """A clone URL in the only form that means one thing to every client, else None."""
    return _parse(text, allow_glob=False)


def _parse(text: str, allow_glob: bool) -> Url | None:
    if not text.isascii() or any(c in text for c in "%?#@\\ \t\r\n") or any(ord(c) < 32 for c in text):
        return None
    try:
        url = urllib.parse.urlsplit(text)
        port = url.port
    except ValueError:
        return None
    scheme, host = url.scheme.lower(), (url.hostname or "")
    if scheme not in ("https", "http") or not _HOST.match(host) or url.query or url.fragment:
        return None
    if scheme == "http" and host not in ("127.0.0.1", "localhost"):
        return None  # a token never crosses the network unencrypted
    if url.netloc.lower() not in (host, f"{host}:{port}") or port == 0:
        return None  # what urlsplit dropped (an empty port, odd brackets) changes the meaning
    segments = tuple(url.path.split("/")[1:]) if url.path else ()
    if not segments or any(not s or s in (".", "..") for s in segments):
        return None
    for s in segments:
        plain = s.replace("*", "") if allow_glob else s
        if (plain and not _SEGMENT.match(plain)) or (not plain and not allow_glob):
            return None
    return Url(scheme, host, port, segments)


def path_segments(path: str) -> tuple[str, ...] | None:
    """A path inside a repository as its segments; None for one that could point elsewhere."""
    path = path.strip().removeprefix("./").strip("/")
    if path in ("", "."):
        return ()
    segments = tuple(path.split("/"))
    if any(not s or s in (".", "..") or "\\" in s or any(ord(c) < 32 for c in s) for s in segments):
        return None
    return segments


def _glob(text: str) -> tuple[str, ...]:
    return tuple(text.strip("/").split("/")) if text.strip("/") else ()


def _match(globs: tuple[str, ...], segments: tuple[str, ...]) -> bool:
    """`*` within one segment, `**` for any number of whole segments; nothing else is special."""
    if not globs:
        return not segments
    first, rest = globs[0], globs[1:]
    if first == "**":
        return any(_match(rest, segments[i:]) for i in range(len(segments) + 1))
    if not segments:
        return False
    regex = ".*".join(re.escape(part) for part in first.split("*"))
    return re.fullmatch(regex, segments[0], re.DOTALL) is not None and _match(rest, segments[1:])


def matches(rule_url: str, namespace: str, url: Url) -> bool:
    want = pattern(rule_url.replace(NAMESPACE, namespace))
    return (
        want is not None
        and want.scheme == url.scheme
        and want.host == url.host
        and want.port == url.port
        and _match(want.segments, url.segments)
    )


def rules_for(rules: tuple[Rule, ...], namespace: str) -> list[Rule]:
    return [r for r in rules if fnmatch.fnmatchcase(namespace, r.namespaces)]


class Refusal(str):
    """Why no rule lets it, for a person; `reason` for the metric and the Event."""

    reason: str

    def __new__(cls, reason: str, message: str) -> "Refusal":
        out = super().__new__(cls, message)
        out.reason = reason
        return out


def grant(rules: tuple[Rule, ...], namespace: str, repo: str, path: str) -> Grant | Refusal:
    """The rule that lets this namespace revert under `path` in `repo`, or why none does. The
    answer never depends on anything in the repository: it is decided before a token is used."""
    mine = rules_for(rules, namespace)
    if not mine:
        return Refusal(
            "no_rule",
            f"no rule allows Git reverts from namespace {namespace}: the platform team sets one with "
            "--git-allowed-repo (chart: gitRevert.allowedRepos), e.g. "
            f"'{namespace}=https://git.example.com/{{namespace}}/*'",
        )
    url = parse_url(repo)
    if url is None:
        return Refusal(
            "repo_not_allowed",
            f"{repo} is not a plain clone URL (https://host/owner/name.git without '.' or '..' segments, "
            "percent-encoding, query, fragment or credentials)",
        )
    by_url = [r for r in mine if matches(r.url, namespace, url)]
    if not by_url:
        return Refusal(
            "repo_not_allowed",
            f"{repo} is not among the repositories namespace {namespace} may revert in "
            f"(--git-allowed-repo rules for it: {'; '.join(str(r) for r in mine)})",
        )
    for rule in by_url:
        if Grant(rule, namespace).allows_path(path):
            return Grant(rule, namespace)
    return Refusal(
        "outside_paths",
        f"{path} is not among the paths namespace {namespace} may revert in {repo} "
        f"(--git-allowed-repo rules for it: {'; '.join(str(r) for r in by_url)})",
    )


def canonical(url: Url) -> str:
    """The URL as git and the forges are given it: lower-case scheme and host."""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}/{'/'.join(url.segments)}"


def lock_key(url: Url) -> str:
    """One name per repository however the tenant spelled it."""
    return canonical(url).removesuffix(".git")
