"""Runs reverts in the background after a rollback: bounded, timed, never blocking or undoing it."""
import fnmatch
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autorollback import history, kube, logs, metrics
from autorollback.events import post as _post
from autorollback.gitrevert import core, forge, git

log = logs.get(__name__)


@dataclass
class Settings:
    credentials_dir: Path | None = None
    api_bases: dict[str, str] | None = None
    workers: int = 2
    argocd_namespace: str | None = None  # read Argo CD Applications (their default namespace)
    flux: bool = False  # read Flux Kustomizations and GitRepositories
    allowed: tuple[str, ...] = ()  # fnmatch patterns of repository URLs reverts may go to (empty: any)


_settings = Settings()
_pool: ThreadPoolExecutor | None = None
_submitted: dict[str, None] = {}  # failed ReplicaSets whose revert this process took on (bounded, oldest out)
SUBMITTED_LIMIT = 1000


_locks: dict[str, threading.Lock] = {}  # one revert at a time per repository


def configure(settings: Settings) -> None:
    global _settings, _pool
    _settings = settings
    _pool = ThreadPoolExecutor(settings.workers, "autorollback-git")
    for old in Path(tempfile.gettempdir()).glob("autorollback-revert-*"):  # left by a killed process
        pid = old.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)


def stop() -> None:
    git.STOPPING.set()
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)


def _credentials(host: str, api: str = "") -> tuple[str, str]:
    """Read at use: a rotated Secret works without a restart. A token, or a GitHub App
    (app-id, private-key, installation-id) whose installation token is minted here."""
    if _settings.credentials_dir is None:
        raise forge.ForgeError(0, "the operator runs without --git-credentials-dir")
    entry = _settings.credentials_dir / host  # a file (a Secret key named after the host) or a folder
    if entry.is_dir() and (entry / "app-id").is_file():
        read = {f: (entry / f).read_text().strip() for f in ("app-id", "private-key", "installation-id")
                if (entry / f).is_file()}
        if len(read) < 3:
            raise forge.ForgeError(0, f"GitHub App credentials for {host} need app-id, private-key and installation-id")
        return "x-access-token", forge.github_app_token(api, read["app-id"], read["private-key"], read["installation-id"])
    try:
        token = (entry / "token" if entry.is_dir() else entry).read_text().strip()
    except OSError:
        raise forge.ForgeError(0, f"no token for {host}: expected a file {host} or {host}/token in the "
                                  "credentials directory (the chart mounts it from gitRevert.secretName)") from None
    if not token:
        raise forge.ForgeError(0, f"the token file for {host} is empty")
    user = (entry / "username").read_text().strip() if (entry / "username").is_file() else ""
    return user, token


def submit(deployment: dict[str, Any], failing: history.Revision, facts: core.Facts, rolled_back_at: float,
           dry_run: bool = False) -> None:
    if not core.wanted(deployment["metadata"].get("annotations")):
        return
    if _pool is None:
        configure(Settings())
    if not dry_run:
        key = f"{deployment['metadata']['namespace']}/{failing.name}"
        if key in _submitted:
            return  # in flight or done here already; after a restart the ReplicaSet's mark says so
        _submitted[key] = None
        while len(_submitted) > SUBMITTED_LIMIT:
            del _submitted[next(iter(_submitted))]
    _pool.submit(_run, deployment, failing, facts, rolled_back_at, dry_run)


def discover(deployment: dict[str, Any], failing: history.Revision) -> core.Source | str:
    """Annotations first, then Argo CD, then Flux: the first that names a source wins."""
    meta = deployment["metadata"]
    found = core.source(meta.get("annotations"), failing.annotations)
    if not isinstance(found, str) or core.REPO in {**(meta.get("annotations") or {}), **failing.annotations}:
        return found
    reasons = [found]
    provider = (meta.get("annotations") or {}).get(core.PROVIDER, "")
    app = core.argo_application(meta, _settings.argocd_namespace or "") if _settings.argocd_namespace else None
    if app:
        try:
            found = core.from_argo(kube.request("GET", f"/apis/argoproj.io/v1alpha1/namespaces/{app[0]}/applications/"
                                                       f"{app[1]}"), deployment, provider)
        except kube.ApiError as e:
            found = f"cannot read Argo CD Application {app[0]}/{app[1]}: {e}"
        if not isinstance(found, str):
            return found
        reasons.append(found)
    ks = core.flux_kustomization(meta) if _settings.flux else None
    if ks:
        try:
            kustomization = kube.request(
                "GET", f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{ks[0]}/kustomizations/{ks[1]}")
            ref = (kustomization.get("spec") or {}).get("sourceRef") or {}
            if ref.get("kind") != "GitRepository":
                raise kube.ApiError(0, "", f"its source is a {ref.get('kind')}, not a GitRepository")
            repository = kube.request("GET", f"/apis/source.toolkit.fluxcd.io/v1/namespaces/"
                                             f"{ref.get('namespace') or ks[0]}/gitrepositories/{ref.get('name')}")
            found = core.from_flux(kustomization, repository, deployment, provider)
        except kube.ApiError as e:
            found = f"cannot use Flux Kustomization {ks[0]}/{ks[1]}: {e}"
        if not isinstance(found, str):
            return found
        reasons.append(found)
    return "; ".join(reasons)


def _run(deployment: dict[str, Any], failing: history.Revision, facts: core.Facts, rolled_back_at: float,
         dry_run: bool = False) -> None:
    meta = deployment["metadata"]
    who = {"namespace": meta["namespace"], "deployment": meta["name"]}
    if failing.mark(core.PR_MARK) and not dry_run:  # proposed before (another process, or before a restart)
        log.info("revert already proposed", url=failing.mark(core.PR_MARK), **who)
        return
    src = discover(deployment, failing)
    if isinstance(src, str):
        metrics.reverts.labels("not_proposed", "no_source").inc()
        log.warning("revert not proposed", reason="no_source", message=src, **who)
        _post(deployment, "Warning", "RevertNotProposed", f"no revert pull request: {src}")
        return
    if _settings.allowed and not any(fnmatch.fnmatch(src.repo, p) for p in _settings.allowed):
        metrics.reverts.labels("not_proposed", "repo_not_allowed").inc()
        _post(deployment, "Warning", "RevertNotProposed", f"no revert pull request: {src.repo} is not among the "
                                                          "repositories this operator may open pull requests in "
                                                          "(--git-allowed-repo)")
        return
    images = core.changed_images(failing.template, facts.restored_template or {})
    if not images and not src.commit:
        metrics.reverts.labels("not_proposed", "no_image_change").inc()
        _post(deployment, "Warning", "RevertNotProposed", "no revert pull request (no_image_change): the failed "
              "revision runs the same images as the restored one, so no commit can be found by its image; stamp "
              f"the commit with {core.COMMIT} from CI, or revert by hand")
        return
    failed_image = images[0] if images else facts.failed_images.split(", ")[0]
    try:
        base_url = forge.api_base(src.provider, src.repo, _settings.api_bases or {})
        user, token = _credentials(src.host, base_url)
        user = user or forge.USERNAMES.get(src.provider, "autorollback")
        api = forge.for_source(src.provider, src.repo, token, _settings.api_bases or {})
        owner, name = src.owner_and_name
        base = src.branch or api.default_branch(owner, name)
        with _locks.setdefault(src.repo, threading.Lock()), \
                tempfile.TemporaryDirectory(prefix=f"autorollback-revert-{os.getpid()}-") as work:
            revert = git.Repo(Path(work), src.repo, user, token).prepare(src, base, failed_image, facts,
                                                                         push=not dry_run)
        if dry_run:  # read, never written: no push, no pull request, no mark
            metrics.reverts.labels("planned", "").inc()
            log.info("revert planned", commit=revert.commit, branch=revert.branch, **who)
            _post(deployment, "Normal", "RevertPlanned",
                  f"dry-run: would open a pull request in {src.repo} from branch {revert.branch} to {base} that "
                  f"reverts commit {revert.commit[:12]} ({core.title(revert.subject)}); source from {src.found_by}")
            return
        url = api.find_open(owner, name, revert.branch, base) or api.open(
            owner, name, revert.branch, base, core.title(revert.subject), core.body(revert.commit, facts, src.found_by))
    except git.NotProposed as e:
        metrics.reverts.labels("not_proposed", e.reason).inc()
        log.warning("revert not proposed", reason=e.reason, message=str(e), **who)
        _post(deployment, "Warning", "RevertNotProposed", f"no revert pull request ({e.reason}): {e}")
        if not dry_run:  # decided: not to be tried again after a restart
            _record(meta, failing, f"none ({e.reason})")
        return
    except Exception as e:  # noqa: BLE001 - whatever it was, it is said: Event, metric, log line
        known = isinstance(e, (git.GitError, forge.ForgeError))
        metrics.reverts.labels("failed", type(e).__name__).inc()
        log.error("revert failed", error=str(e) if known else type(e).__name__, **who)
        e = e if known else f"unexpected {type(e).__name__}"
        _post(deployment, "Warning", "RevertFailed", f"could not open the revert pull request in {src.repo}: {e}. "
                                                    "The rollback stands; revert the commit in Git by hand.")
        return
    result = "exists" if revert.existed else "opened"
    metrics.reverts.labels(result, "").inc()
    metrics.revert_seconds.observe(max(0.0, time.time() - rolled_back_at))
    log.info("revert proposed", url=url, commit=revert.commit, branch=revert.branch, result=result, **who)
    _post(deployment, "Normal", "RevertProposed",
          f"revert pull request {url} reverts commit {revert.commit[:12]} ({core.title(revert.subject)}) on "
          f"{base}; source from {src.found_by}")
    _record(meta, failing, url)


def _record(meta: dict[str, Any], failing: history.Revision, value: str) -> None:
    try:
        kube.annotate_replicaset(meta["namespace"], failing.name, {core.PR_MARK: history.bind(failing.name, value)})
    except kube.ApiError as e:
        log.warning("cannot record the pull request on the ReplicaSet", error=str(e), namespace=meta["namespace"],
                    deployment=meta["name"])
