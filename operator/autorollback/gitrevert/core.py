"""What to revert and how to say it: pure decisions, no I/O."""

import hashlib
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autorollback.config import PREFIX, quote

ENABLED = PREFIX + "git-revert"
REPO = PREFIX + "git-repo"
PATH = PREFIX + "git-path"
BRANCH = PREFIX + "git-branch"
COMMIT = PREFIX + "git-commit"
PROVIDER = PREFIX + "git-provider"
PR_MARK = PREFIX + "revert-pr"  # on the failed ReplicaSet: the pull request that reverts it
PROVIDERS = ("github", "gitlab", "gitea")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_HOSTS = {"github.com": "github", "gitlab.com": "gitlab", "gitea.com": "gitea", "codeberg.org": "gitea"}


@dataclass(frozen=True)
class Source:
    repo: str  # HTTPS clone URL
    path: str  # file or folder in the repository
    branch: str  # base branch ("" = the repository's default branch)
    commit: str  # the commit that produced the failed version ("" = find it from history)
    provider: str
    found_by: str  # which configuration said so, for the Event

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.repo).hostname or ""

    @property
    def owner_and_name(self) -> tuple[str, str]:
        parts = urllib.parse.urlsplit(self.repo).path.strip("/").removesuffix(".git").split("/")
        return "/".join(parts[:-1]), parts[-1]


def wanted(annotations: Mapping[str, str] | None) -> bool:
    return (annotations or {}).get(ENABLED, "").strip().lower() == "true"


def source(deployment: Mapping[str, str] | None, replicaset: Mapping[str, str] | None) -> Source | str:
    """Where the failed version came from, per the autorollback.io/git-* annotations (the failed
    ReplicaSet's copy first: CI stamps the commit on the Deployment and the controller copies it
    onto the ReplicaSet of that version). A string says why there is no usable source."""
    ann = {**(deployment or {}), **{k: v for k, v in (replicaset or {}).items() if k.startswith(PREFIX + "git-")}}
    repo = ann.get(REPO, "").strip()
    if not repo:
        return f"no {REPO} annotation: set it (with {PATH}) to the HTTPS URL of the repository holding the manifest"
    url = urllib.parse.urlsplit(repo)
    if url.scheme == "http" and url.hostname not in ("127.0.0.1", "localhost", "::1"):
        return f"{REPO} must be an https:// URL: the token would cross the network unencrypted"
    if url.username or url.password:  # never repeat a credential, not even in the Event that refuses it
        return f"{REPO} must not carry credentials: put the token in --git-credentials-dir instead"
    if url.scheme not in ("https", "http") or not url.hostname or url.username or url.password or url.query:
        return (
            f"{REPO}={quote(repo)} is not an HTTPS clone URL without credentials "
            "(https://host/owner/name.git); credentials come from --git-credentials-dir"
        )
    path = ann.get(PATH, "").strip().strip("/")
    if not path or ".." in path.split("/"):
        return f"{PATH}={quote(ann.get(PATH, ''))} must name the manifest's file or folder inside the repository"
    commit = ann.get(COMMIT, "").strip().lower()
    if commit and not _SHA.match(commit):
        return f"{COMMIT}={quote(commit)} is not a commit SHA"
    provider = ann.get(PROVIDER, "").strip().lower() or _HOSTS.get(url.hostname, "")
    if provider not in PROVIDERS:
        return f"cannot tell which forge {url.hostname} is: set {PROVIDER} to one of {', '.join(PROVIDERS)}"
    return Source(
        repo=repo,
        path=path,
        branch=ann.get(BRANCH, "").strip(),
        commit=commit,
        provider=provider,
        found_by="annotations",
    )


def branch_name(commit: str, base: str) -> str:
    """Deterministic: the same revert onto the same base always goes to the same branch
    (idempotent across restarts), and two bases never share one."""
    plain = re.sub(r"[^A-Za-z0-9._-]", "-", base)
    suffix = f"-{hashlib.sha1(base.encode()).hexdigest()[:6]}" if plain != base else ""
    return f"autorollback/revert-{commit[:12]}-onto-{plain}{suffix}"


class Disagreement(str):
    """The annotations name another source than the one that really applies the Deployment."""


@dataclass(frozen=True, kw_only=True)
class RevertFacts:
    """What the rollback's Events said, for the pull request."""

    namespace: str
    deployment: str
    failed_revision: int
    failed_images: str
    restored_revision: int
    restored_images: str
    reason: str
    message: str
    restored_template: dict[str, Any] | None = None
    kind: str = "Deployment"  # the workload's (Workload.kind), as the commit message and pull request name it


def title(subject: str) -> str:
    return f'Revert "{subject}"'[:250]


def commit_message(subject: str, commit: str, facts: RevertFacts) -> str:
    """git revert's own message, plus why."""
    return (
        f'Revert "{subject}"\n\nThis reverts commit {commit}.\n\n'
        f"autorollback rolled {facts.kind} {facts.namespace}/{facts.deployment} back from revision "
        f"{facts.failed_revision} ({facts.failed_images}) to revision {facts.restored_revision} "
        f"({facts.restored_images}): {facts.reason}.\n"
    )


def body(commit: str, facts: RevertFacts, found_by: str) -> str:
    return (
        f"autorollback rolled {facts.kind} **{facts.namespace}/{facts.deployment}** back after a failed rollout, and "
        f"this reverts the commit that introduced the failed version, so that Git matches the cluster again.\n\n"
        f"| | |\n|---|---|\n"
        f"| failed | revision {facts.failed_revision}: `{facts.failed_images}` |\n"
        f"| restored | revision {facts.restored_revision}: `{facts.restored_images}` |\n"
        f"| reason | {facts.reason} |\n"
        f"| controller said | {facts.message[:300]} |\n"
        f"| reverted commit | {commit} |\n"
        f"| source found by | {found_by} |\n\n"
        "Review and merge it yourself: autorollback never merges. Until it is merged, a GitOps sync "
        "re-applies the failed version (autorollback warns `KnownBadTemplate` and does not roll back twice)."
    )


def _images(template: Mapping[str, Any]) -> list[str]:
    spec = template.get("spec") or {}
    return [c.get("image", "") for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])]


def changed_images(failed: Mapping[str, Any], restored: Mapping[str, Any]) -> list[str]:
    """The images of the failed template that the restored one does not have: what a release
    commit changed. Empty when the failure came from something else (env, probes, resources)."""
    before = set(_images(restored))
    return [i for i in _images(failed) if i and i not in before]


def names(line: str, image: str) -> bool:
    """The line names exactly this image (not `shop:1.20` for `shop:1.2`)."""
    return re.search(rf"(?<![\w.:/@-]){re.escape(image)}(?![\w.-])", line) is not None


def introduces(diff: str, image: str) -> bool:
    """A commit's diff adds a line naming the failed image."""
    return any(line.startswith("+") and not line.startswith("+++") and names(line, image) for line in diff.splitlines())


# Argo CD and Flux name the source of what they apply; the operator only reads their objects.
ARGO_TRACKING = "argocd.argoproj.io/tracking-id"
ARGO_INSTANCE = "app.kubernetes.io/instance"
FLUX_NAME = "kustomize.toolkit.fluxcd.io/name"
FLUX_NAMESPACE = "kustomize.toolkit.fluxcd.io/namespace"


def argo_application(meta: Mapping[str, Any], argocd_namespace: str) -> tuple[str, str] | None:
    """(namespace, name) of the Application that manages the object, from Argo CD's tracking
    annotation (`app:group/Kind:ns/name`, app as `ns_app` with apps in any namespace) or label."""
    tracking = ((meta.get("annotations") or {}).get(ARGO_TRACKING) or "").split(":", 1)[0]
    app = tracking or (meta.get("labels") or {}).get(ARGO_INSTANCE) or ""
    if not app:
        return None
    namespace, _, name = app.rpartition("_")
    return namespace or argocd_namespace, name


def flux_kustomization(meta: Mapping[str, Any]) -> tuple[str, str] | None:
    labels = meta.get("labels") or {}
    name, namespace = labels.get(FLUX_NAME), labels.get(FLUX_NAMESPACE)
    return (namespace, name) if name and namespace else None


def _git_source(repo: str, path: str, branch: str, provider: str, found_by: str) -> Source | str:
    ann = {
        REPO: repo,
        PATH: path.removeprefix("./") or ".",
        BRANCH: "" if branch in ("", "HEAD") else branch,
        PROVIDER: provider,
    }
    out = source(ann, {})
    return out if isinstance(out, str) else Source(out.repo, out.path, out.branch, "", out.provider, found_by)


def _group_kind(workload: Mapping[str, Any]) -> tuple[str, str]:
    """The workload's API group and kind (apps, Deployment), as Argo CD and Flux name resources."""
    return str(workload.get("apiVersion") or "").rpartition("/")[0], str(workload.get("kind") or "")


def from_argo(app: Mapping[str, Any], deployment: Mapping[str, Any], provider: str = "") -> Source | str:
    meta, spec, status = app.get("metadata") or {}, app.get("spec") or {}, app.get("status") or {}
    who = f"Argo CD Application {meta.get('namespace')}/{meta.get('name')}"
    mine, (group, kind) = deployment["metadata"], _group_kind(deployment)
    if not any(
        r.get("kind") == kind
        and r.get("group") == group
        and r.get("name") == mine["name"]
        and r.get("namespace") == mine["namespace"]
        for r in status.get("resources") or []
    ):
        return f"{who} does not list this {kind} among its resources: not using it"
    sources = [spec["source"]] if spec.get("source") else list(spec.get("sources") or [])
    src = next((s for s in sources if s.get("path")), None)
    if src is None:
        return f"{who} has no Git source with a path (Helm charts from a chart repository cannot be reverted)"
    return _git_source(src.get("repoURL", ""), src["path"], src.get("targetRevision", ""), provider, who)


def from_flux(
    kustomization: Mapping[str, Any], repository: Mapping[str, Any], deployment: Mapping[str, Any], provider: str = ""
) -> Source | str:
    meta, spec = kustomization.get("metadata") or {}, kustomization.get("spec") or {}
    who = f"Flux Kustomization {meta.get('namespace')}/{meta.get('name')}"
    mine, (group, kind) = deployment["metadata"], _group_kind(deployment)
    entry = f"{mine['namespace']}_{mine['name']}_{group}_{kind}"
    if entry not in [
        e.get("id") for e in ((kustomization.get("status") or {}).get("inventory") or {}).get("entries") or []
    ]:
        return f"{who} does not list this {kind} in its inventory: not using it"
    ref = (repository.get("spec") or {}).get("ref") or {}
    return _git_source(
        (repository.get("spec") or {}).get("url", ""), spec.get("path") or ".", ref.get("branch", ""), provider, who
    )
