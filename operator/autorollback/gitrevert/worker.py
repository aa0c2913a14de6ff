"""Runs reverts in the background after a rollback: bounded, fair between namespaces, timed, and
never blocking or undoing the rollback.

A revert is allowed by the platform's rules before anything is fetched or a token is used. Each
attempt is recorded on the failed ReplicaSet before it starts, so a revert lost to a crash is
finished by the next process, and one that kills the process is given up after a few attempts.
"""

import dataclasses
import fcntl
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autorollback import faults, history, kube, logs, telemetry
from autorollback.events import post as _post
from autorollback.gitrevert import core, credentials, forge, git, policy
from autorollback.gitrevert.queue import Queue, serve
from autorollback.workloads.base import Api

log = logs.get(__name__)
SOURCES = ("any", "discovered", "annotations")
ATTEMPTS = core.PREFIX + "revert-attempts"  # on the failed ReplicaSet: `<rs> <attempts started>`
MAX_ATTEMPTS = 3
RETRY_BUSY = 5.0  # seconds before a revert whose repository is busy is queued again
WORKDIR_PREFIX = "autorollback-revert-"
SUBMITTED_LIMIT = 1000  # failed ReplicaSets remembered as taken on by this process


@dataclass
class Settings:
    credentials_dir: Path | None = None
    api_bases: dict[str, str] | None = None
    workers: int = 2
    argocd_namespace: str | None = None  # read Argo CD Applications (their default namespace)
    flux: bool = False  # read Flux Kustomizations and GitRepositories
    rules: tuple[policy.Rule, ...] = ()  # namespace -> repositories; none: no namespace gets a revert
    sources: str = "any"  # where a source may come from: any, discovered (Argo CD, Flux), annotations
    per_namespace: int = 1  # reverts of one namespace running at once
    timeout: float = 300.0  # one revert, start to end
    max_file_bytes: int = 1 << 20  # larger blobs are never fetched
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))


@dataclass(frozen=True)
class RevertJob:
    """What a revert needs, without the workload's body: small, whatever the tenant wrote."""

    deployment: dict[str, Any]  # apiVersion, kind (Workload.kind) and the metadata the sources are found from
    failing: history.Revision
    facts: core.RevertFacts
    images: tuple[str, ...]  # images the failed revision added
    rolled_back_at: float | None  # on time.monotonic(); None: not seen by this process
    dry_run: bool


def _hold(folder: Path) -> int:
    """A lock held for as long as this process lives: the kernel lets go of it when it dies."""
    fd = os.open(folder / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _stale(folder: Path) -> bool:
    """Left by a process that is gone (its lock is free), not merely by another one (in a pod
    there is one, but not on a developer's machine)."""
    try:
        fd = os.open(folder / ".lock", os.O_RDWR)
    except FileNotFoundError:  # an older version's folder, or one a second old whose lock is coming
        try:
            return time.time() - folder.stat().st_mtime > 60
        except OSError:
            return False
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


VALUE_LIMIT = 2048  # longer values of the keys a revert reads are kept as TOO_LONG, which nothing accepts
TOO_LONG = "<value too long>"
_SOURCE_KEYS = {core.ARGO_TRACKING, core.ARGO_INSTANCE, core.FLUX_NAME, core.FLUX_NAMESPACE, core.PR_MARK}


def _small(values: dict[str, str] | None) -> dict[str, str]:
    """Only the keys a revert reads, each value bounded: a queued job is small whatever a tenant wrote."""
    return {
        k: v if len(v) <= VALUE_LIMIT else TOO_LONG
        for k, v in (values or {}).items()
        if k.startswith(core.PREFIX + "git-") or k in _SOURCE_KEYS
    }


def _compact(deployment: dict[str, Any], kind: str) -> dict[str, Any]:
    meta = deployment["metadata"]
    return {
        "apiVersion": deployment.get("apiVersion", "apps/v1"),
        "kind": kind,
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "annotations": _small(meta.get("annotations")),
            "labels": _small(meta.get("labels")),
        },
    }


def _api(api: kube.Client, job: RevertJob) -> Api:
    """The I/O of the job's kind (its history: a Deployment's ReplicaSets)."""
    return kube.api_for(api, job.deployment["kind"])


def _key(job: RevertJob) -> str:
    return f"{job.deployment['metadata']['namespace']}/{job.failing.name}/{job.dry_run}"


class Worker:
    """The revert workers of this process: its folder, queue, per-repository locks and the reverts it
    took on. Created once at start-up (it starts the workers); clones of earlier processes are
    removed: each process has its own random folder, and only one process runs in a pod."""

    def __init__(self, api: kube.Client, settings: Settings):
        self.api, self.settings = api, settings
        self.stopping = threading.Event()  # set on shutdown: a running revert stops at its next git command
        # one revert at a time per repository (bounded by the rules' repositories)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._busy = 0  # reverts being worked on now
        self._idle = threading.Condition()
        self._submitted: dict[str, None] = {}  # failed ReplicaSets whose revert this process took on (oldest out)
        name = secrets.token_hex(8)
        fresh = settings.workdir / f".{WORKDIR_PREFIX}{name}"  # locked before it gets a name the cleanup looks at
        fresh.mkdir(mode=0o700)
        self._held = _hold(fresh)  # the lock on workdir, for as long as this process lives
        self.workdir = fresh.rename(settings.workdir / (WORKDIR_PREFIX + name))
        for old in settings.workdir.glob(WORKDIR_PREFIX + "*"):
            if old != self.workdir and _stale(old):
                shutil.rmtree(old, ignore_errors=True)
        self.queue = Queue(settings.per_namespace)
        for i in range(settings.workers):
            threading.Thread(
                target=serve, args=(self.queue, self._run), name=f"autorollback-git-{i}", daemon=True
            ).start()

    def stop(self) -> None:
        self.stopping.set()
        self.queue.close()

    def submit(
        self,
        deployment: dict[str, Any],
        failing: history.Revision,
        facts: core.RevertFacts,
        rolled_back_at: float | None,
        dry_run: bool = False,
        *,
        kind: str,
    ) -> None:
        """Queue the revert of a rollback (never blocks; one job per failed ReplicaSet). kind: the
        workload's (Workload.kind), whose I/O (kube.api_for) reads and marks its history."""
        if not core.wanted(deployment["metadata"].get("annotations")):
            return
        namespace = deployment["metadata"]["namespace"]
        key = f"{namespace}/{failing.name}"
        if not dry_run:
            if key in self._submitted:
                return  # taken on here already; after a restart the ReplicaSet's marks say where it stands
            self._submitted[key] = None
            while len(self._submitted) > SUBMITTED_LIMIT:
                del self._submitted[next(iter(self._submitted))]
        images = tuple(core.changed_images(failing.template, facts.restored_template or {}))
        failing = history.Revision(failing.number, failing.name, {}, _small(failing.annotations))
        facts = dataclasses.replace(facts, restored_template=None)  # needed for the images only: the job stays small
        job = RevertJob(_compact(deployment, kind), failing, facts, images, rolled_back_at, dry_run)
        if self.queue.put(namespace, _key(job), job):
            waiting = self.queue.waiting(namespace)
            if waiting > self.settings.per_namespace:
                log.info(
                    "revert waits for its namespace's turn",
                    waiting=waiting,
                    namespace=namespace,
                    deployment=facts.deployment,
                )

    def _sources(self, deployment: dict[str, Any], failing: history.Revision) -> tuple[core.Source | None, list[str]]:
        """The source the GitOps controller says it applies from (Argo CD, then Flux), if any, and
        why the others gave none."""
        meta, reasons = deployment["metadata"], []
        provider = (meta.get("annotations") or {}).get(core.PROVIDER, "")
        app = (
            core.argo_application(meta, self.settings.argocd_namespace or "")
            if self.settings.argocd_namespace
            else None
        )
        if app:
            try:
                found = core.from_argo(
                    self.api.request("GET", f"/apis/argoproj.io/v1alpha1/namespaces/{app[0]}/applications/{app[1]}"),
                    deployment,
                    provider,
                )
            except kube.ApiError as e:
                found = f"cannot read Argo CD Application {app[0]}/{app[1]} ({e.status})"
            if not isinstance(found, str):
                return found, reasons
            reasons.append(found)
        ks = core.flux_kustomization(meta) if self.settings.flux else None
        if ks:
            try:
                kustomization = self.api.request(
                    "GET", f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{ks[0]}/kustomizations/{ks[1]}"
                )
                ref = (kustomization.get("spec") or {}).get("sourceRef") or {}
                if ref.get("kind") != "GitRepository":
                    raise kube.ApiError(0, "", f"its source is a {ref.get('kind')}, not a GitRepository")
                if ref.get("namespace") not in (None, "", ks[0]) or ks[0] != meta["namespace"]:
                    raise kube.ApiError(
                        0,
                        "",
                        "it or its GitRepository is in another namespace (not followed: "
                        "like Flux's --no-cross-namespace-refs)",
                    )
                repository = self.api.request(
                    "GET",
                    f"/apis/source.toolkit.fluxcd.io/v1/namespaces/"
                    f"{ref.get('namespace') or ks[0]}/gitrepositories/{ref.get('name')}",
                )
                found = core.from_flux(kustomization, repository, deployment, provider)
            except kube.ApiError as e:
                found = f"cannot use Flux Kustomization {ks[0]}/{ks[1]} ({e.status or e})"
            if not isinstance(found, str):
                return found, reasons
            reasons.append(found)
        return None, reasons

    def discover(self, deployment: dict[str, Any], failing: history.Revision) -> core.Source | str:
        """The source to revert in, by --git-sources. With `any`, what the GitOps controller applies
        from wins, and annotations naming another repository or path are refused."""
        meta = deployment["metadata"]
        annotated = {**(meta.get("annotations") or {}), **failing.annotations}
        named = core.REPO in annotated or core.PATH in annotated
        found, reasons = self._sources(deployment, failing) if self.settings.sources != "annotations" else (None, [])
        if self.settings.sources == "discovered":
            if found is None:
                return "; ".join(
                    reasons or [f"no Argo CD Application or Flux Kustomization lists this {deployment['kind']}"]
                ) + (" (--git-sources=discovered: the autorollback.io/git-* annotations are not used)")
            return found
        from_annotations = core.source(meta.get("annotations"), failing.annotations) if named or found is None else None
        if found is None:
            return (
                from_annotations
                if not reasons or not isinstance(from_annotations, str)
                else "; ".join([from_annotations, *reasons])
            )
        if named and (
            isinstance(from_annotations, str)
            or policy.parse_url(from_annotations.repo) is None
            or policy.lock_key(policy.parse_url(from_annotations.repo))
            != policy.lock_key(policy.parse_url(found.repo) or policy.Url("", "", None, ()))
            or policy.path_segments(from_annotations.path) != policy.path_segments(found.path)
        ):
            named_repo = annotated.get(core.REPO, "")
            return core.Disagreement(
                f"the annotations name {core.quote(named_repo)} path {core.quote(annotated.get(core.PATH, ''))} but "
                f"{found.found_by} applies this {deployment['kind']} from {found.repo} path {found.path}: the source that "
                f"really applies it wins; remove or correct the {core.REPO}/{core.PATH} annotations"
            )
        if named and not isinstance(from_annotations, str) and from_annotations.commit:
            return core.Source(
                found.repo, found.path, found.branch, from_annotations.commit, found.provider, found.found_by
            )
        return found

    def _lock(self, repo: policy.Url) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(policy.lock_key(repo), threading.Lock())

    def _not_proposed(self, job: RevertJob, reason: str, message: str, record: bool = True) -> None:
        meta = job.deployment["metadata"]
        telemetry.reverts.labels("not_proposed", reason).inc()
        log.warning(
            "revert not proposed", reason=reason, message=message, namespace=meta["namespace"], deployment=meta["name"]
        )
        _post(self.api, job.deployment, "Warning", "RevertNotProposed", f"no revert pull request ({reason}): {message}")
        if record and not job.dry_run:  # decided: not to be tried again after a restart
            self._record(job, f"none ({reason})")

    def _failed(self, job: RevertJob, reason: str, message: str) -> None:
        meta = job.deployment["metadata"]
        telemetry.reverts.labels("failed", reason).inc()
        log.error("revert failed", reason=reason, error=message, namespace=meta["namespace"], deployment=meta["name"])
        _post(
            self.api,
            job.deployment,
            "Warning",
            "RevertFailed",
            f"{message}. The rollback stands; revert the commit in Git by hand.",
        )

    def _pending(self, job: RevertJob) -> bool:
        """The failed ReplicaSet as it is now still waits for its revert (another process, or this one
        before a restart, may have proposed it or decided against it)."""
        meta = job.deployment["metadata"]
        rs = _api(self.api, job).get_revision(meta["namespace"], job.failing.name)
        mark = history.bound(
            job.failing.name, ((rs or {}).get("metadata", {}).get("annotations") or {}).get(core.PR_MARK)
        )
        if mark:
            log.info("revert already proposed", url=mark, namespace=meta["namespace"], deployment=meta["name"])
        return rs is not None and not mark

    def _start_attempt(self, job: RevertJob) -> bool:
        """Record one more attempt on the failed ReplicaSet before any Git work, in a write that
        fails if another process got there first. False: nothing (more) to do."""
        meta, api = job.deployment["metadata"], _api(self.api, job)
        for _ in range(5):
            rs = api.get_revision(meta["namespace"], job.failing.name)
            if rs is None:
                return False  # deleted: nothing to record the revert on
            annotations = rs["metadata"].get("annotations") or {}
            if history.bound(job.failing.name, annotations.get(core.PR_MARK)):
                return False  # proposed, or decided against, by this or another process
            done = history.bound(job.failing.name, annotations.get(ATTEMPTS))
            attempts = int(done) if done.isdigit() else 0
            if attempts >= MAX_ATTEMPTS:
                self._failed(
                    job,
                    "attempts_exhausted",
                    f"the revert was started {attempts} times (by this or earlier "
                    "operator processes) and none of them opened a pull request: each "
                    "failed or the operator stopped during it (killed, out of memory, "
                    "restarted); not trying again",
                )
                self._record(job, "none (attempts_exhausted)")
                return False
            try:
                api.mark_revision(
                    meta["namespace"],
                    job.failing.name,
                    {ATTEMPTS: history.bind(job.failing.name, str(attempts + 1))},
                    rs["metadata"]["resourceVersion"],
                )
                return True
            except kube.ApiError as e:
                if e.status != 409:
                    raise
        return False

    def _run(self, job: RevertJob) -> None:
        with self._idle:
            self._busy += 1
        try:
            self._attempt(job)
        except Exception as e:  # noqa: BLE001 - whatever it was, it is said: Event, metric, log line
            if self.stopping.is_set():  # stopped by shutdown: the next leader resumes it from the marks
                log.info(
                    "revert left to the next process",
                    namespace=job.deployment["metadata"]["namespace"],
                    deployment=job.deployment["metadata"]["name"],
                )
                return
            known = isinstance(e, (git.GitError, forge.ForgeError, kube.ApiError))
            self._failed(
                job,
                type(e).__name__,
                f"could not open the revert pull request: {e if known else 'unexpected ' + type(e).__name__}",
            )
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """After stop(): wait until no revert is in flight (its running git command or forge call ends)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def _attempt(self, job: RevertJob) -> None:
        meta = job.deployment["metadata"]
        if not job.dry_run and not self._pending(job):
            return
        src = self.discover(job.deployment, job.failing)
        if isinstance(src, core.Disagreement):
            return self._not_proposed(job, "source_disagrees", str(src))
        if isinstance(src, str):
            return self._not_proposed(job, "no_source", src, record=False)
        allowed = policy.grant(self.settings.rules, meta["namespace"], src.repo, src.path)
        if isinstance(allowed, policy.Refusal):
            return self._not_proposed(job, allowed.reason, allowed)
        url = policy.parse_url(src.repo)
        src = dataclasses.replace(src, repo=policy.canonical(url))
        if not job.images and not src.commit:
            return self._not_proposed(
                job,
                "no_image_change",
                "the failed revision runs the same images as the restored "
                "one, so no commit can be found by its image; stamp the "
                f"commit with {core.COMMIT} from CI, or revert by hand",
            )
        lock = self._lock(url)
        if not lock.acquire(blocking=False):  # another revert in this repository: wait behind it, not in a worker
            later = threading.Timer(RETRY_BUSY, self.queue.put, (meta["namespace"], _key(job), job))
            later.daemon = True
            later.start()
            return
        try:
            self._locked(job, src, allowed, url)
        finally:
            lock.release()

    def _locked(self, job: RevertJob, src: core.Source, allowed: policy.Grant, url: policy.Url) -> None:
        meta = job.deployment["metadata"]
        who = {"namespace": meta["namespace"], "deployment": meta["name"]}
        deadline = time.monotonic() + self.settings.timeout
        if not job.dry_run and not (self.api.guard() and self._start_attempt(job)):
            return  # not (or no longer) the leader: the next leader takes it up from the marks
        faults.point("revert_started")
        failed_image = job.images[0] if job.images else job.facts.failed_images.split(", ")[0]
        try:
            api_base = forge.api_base(src.provider, src.repo, self.settings.api_bases or {})
            owner, name = src.owner_and_name
            user, token = credentials.lookup(
                self.settings.credentials_dir,
                allowed.credential or credentials.key(src.repo),
                src.provider,
                api_base,
                owner,
                name,
            )
            api = forge.for_source(src.provider, src.repo, token, self.settings.api_bases or {})
            base = src.branch or api.default_branch(owner, name)
            with tempfile.TemporaryDirectory(dir=self.workdir) as work:
                limits = git.Limits(
                    blob=self.settings.max_file_bytes,
                    deadline=max(1.0, deadline - time.monotonic()),
                    stopping=self.stopping,
                )
                revert = git.Repo(Path(work), src.repo, user, token, limits).prepare(
                    src,
                    base,
                    failed_image,
                    job.facts,
                    push=not job.dry_run,
                    allowed_path=allowed.allows_path,
                    image_changed=bool(job.images),
                )
            if job.dry_run:  # read, never written: no push, no pull request, no mark
                telemetry.reverts.labels("planned", "").inc()
                log.info("revert planned", commit=revert.commit, branch=revert.branch, **who)
                _post(
                    self.api,
                    job.deployment,
                    "Normal",
                    "RevertPlanned",
                    f"dry-run: would open a pull request in {src.repo} from branch {revert.branch} to {base} that "
                    f"reverts commit {revert.commit[:12]} ({core.title(revert.subject)}); source from {src.found_by}",
                )
                return
            faults.point("revert_pushed")
            if not self.api.guard():
                return  # lost the Lease after the push: the next leader finds the branch and opens the pull request
            pr = api.find_open(owner, name, revert.branch, base) or api.open(
                owner,
                name,
                revert.branch,
                base,
                core.title(revert.subject),
                core.body(revert.commit, job.facts, src.found_by),
            )
            faults.point("revert_opened")
        except git.NotProposed as e:
            return self._not_proposed(job, e.reason, str(e))
        except (git.GitError, forge.ForgeError) as e:
            return self._failed(job, type(e).__name__, f"could not open the revert pull request in {src.repo}: {e}")
        result = "exists" if revert.existed else "opened"
        telemetry.reverts.labels(result, "").inc()
        if job.rolled_back_at is not None:
            telemetry.revert_seconds.observe(max(0.0, time.monotonic() - job.rolled_back_at))
        log.info("revert proposed", url=pr, commit=revert.commit, branch=revert.branch, result=result, **who)
        _post(
            self.api,
            job.deployment,
            "Normal",
            "RevertProposed",
            f"revert pull request {pr} reverts commit {revert.commit[:12]} ({core.title(revert.subject)}) on "
            f"{base}; source from {src.found_by}",
        )
        self._record(job, pr)

    def _record(self, job: RevertJob, value: str) -> None:
        meta, failing = job.deployment["metadata"], job.failing
        try:
            _api(self.api, job).mark_revision(
                meta["namespace"], failing.name, {core.PR_MARK: history.bind(failing.name, value)}
            )
        except kube.ApiError as e:
            log.warning(
                "cannot record the pull request on the ReplicaSet",
                error=str(e),
                namespace=meta["namespace"],
                deployment=meta["name"],
            )
