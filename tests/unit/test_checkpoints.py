"""Checkpoints of a measured deadline (autorollback.io/no-progress): signed with the operator's key,
bound to the ReplicaSet's uid and the state; one episode's seconds are never resumed in another."""

import base64
from typing import Any

import pytest

from autorollback import checkpoints, decision, history, kube, reconcile, state
from autorollback.context import Context
from autorollback.reconcile import measure, recovery
from autorollback.workloads.deployment import DEPLOYMENTS

from factories import deployment, replicaset, rs_name

KEY = bytes(range(32))
UID, NAME, STATE = "rs-uid-1", "web-abc", "0123456789abcdef"


def test_a_genuine_checkpoint_resumes() -> None:
    value = checkpoints.mark(KEY, NAME, UID, STATE, 42.9)
    assert value.split(" ")[:3] == [NAME, STATE, "42"] and len(value.split(" ")[3]) == 64
    assert checkpoints.resumed(KEY, value, NAME, UID, STATE) == 42


@pytest.mark.parametrize(
    "forged",
    [
        f"{NAME} {STATE} 10000000",  # the format before signatures: anyone could write it
        checkpoints.mark(b"a tenant's guess of the key.....", NAME, UID, STATE, 10**7),  # without the key
        checkpoints.mark(KEY, NAME, UID, STATE, 40).rsplit(" ", 1)[0] + " " + "0" * 64,  # a made-up signature
        checkpoints.mark(KEY, NAME, UID, STATE, 40) + " 1",  # anything added
        "",
        "garbage",
        f"{NAME} {STATE} 40 ",
    ],
)
def test_a_value_not_signed_with_the_key_counts_for_nothing(forged: str) -> None:
    assert checkpoints.resumed(KEY, forged, NAME, UID, STATE) == 0


def test_a_checkpoint_of_another_replicaset_or_state_counts_for_nothing() -> None:
    value = checkpoints.mark(KEY, NAME, UID, STATE, 40)
    # the same name, another uid: a ReplicaSet deleted and created again, or a value carried over
    assert checkpoints.resumed(KEY, value, NAME, "rs-uid-2", STATE) == 0
    assert checkpoints.resumed(KEY, value, "web-other", UID, STATE) == 0  # copied onto another ReplicaSet
    assert checkpoints.resumed(KEY, value, NAME, UID, "fedcba9876543210") == 0  # progress since: another state
    assert checkpoints.resumed(KEY, value, NAME, "", STATE) == 0  # no uid to bind to


@pytest.mark.parametrize("seconds", ["41", "4000", "040", "10000000", "٤٠", "+40", "40.0"])
def test_tampered_seconds_count_for_nothing(seconds: str) -> None:
    name, digest_, _, mac = checkpoints.mark(KEY, NAME, UID, STATE, 40).split(" ")
    assert checkpoints.resumed(KEY, f"{name} {digest_} {seconds} {mac}", NAME, UID, STATE) == 0


def test_a_resumed_checkpoint_is_bounded() -> None:
    assert (
        checkpoints.resumed(KEY, checkpoints.mark(KEY, NAME, UID, STATE, 10**9), NAME, UID, STATE)
        == checkpoints.MAX_SECONDS
    )


# --- the shell: measuring, checkpointing, episodes (reconcile.measure), with the API faked ------------


class FakeReplicaSets:
    """The API (kube.Client) as far as these tests use it: annotate_replicaset onto ReplicaSet dicts,
    as a merge patch does."""

    def __init__(self, replicasets: list[dict[str, Any]]) -> None:
        self.replicasets = replicasets
        self.writes: list[tuple[str, dict]] = []

    def get_replicaset(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next((r for r in self.replicasets if r["metadata"]["name"] == name), None)

    def annotate_replicaset(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        self.writes.append((name, annotations))
        rs = next(r for r in self.replicasets if r["metadata"]["name"] == name)
        ann = rs["metadata"].setdefault("annotations", {})
        for k, v in annotations.items():
            if v is None:
                ann.pop(k, None)
            else:
                ann[k] = v


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeReplicaSets, Clock]:
    stuck_rs = replicaset(2, "app:2.0.0")
    stuck_rs["metadata"]["uid"] = "uid-of-2"
    fake = FakeReplicaSets(
        [replicaset(1, "app:1.0.0", {history.HEALTHY_AT: "2026-11-26T09:00:00.000000Z"}, available=3), stuck_rs]
    )
    clock = Clock()
    monkeypatch.setattr(measure.times, "monotonic", clock)
    return fake, clock


def stuck(updated: int = 1) -> dict[str, Any]:
    """A rollout the controller will never time out (a leftover complete condition): measured."""
    d = deployment("app:2.0.0", revision=2, complete=True, blamed="app:1.0.0")
    d["status"].update(replicas=4, updatedReplicas=updated, availableReplicas=3)
    d["spec"]["progressDeadlineSeconds"] = 45
    return d


def work(fake: FakeReplicaSets) -> reconcile.Work:
    d = stuck()
    ctx = Context(fake, None, KEY)  # type: ignore[arg-type]  # no Git worker: nothing here reverts
    return reconcile.Work(
        ctx=ctx,
        uid="d-uid",
        namespace="ns",
        name="web",
        deployment=d,
        config=None,  # type: ignore[arg-type]
        jobs=set(),
        workload=DEPLOYMENTS,
    )


def look(w: reconcile.Work, d: dict[str, Any], fake: FakeReplicaSets) -> float:
    """One pass of the measured-deadline path, as the failure job does it for a stale state."""
    measured, starting = measure.elapsed(w, d, fake.replicasets)
    measure.start(w, starting)
    measure.checkpoint(w, d, fake.replicasets, measured, 15.0)
    return measured.seconds


def mark(fake: FakeReplicaSets) -> str:
    return fake.replicasets[1]["metadata"]["annotations"].get(decision.NO_PROGRESS, "")


def test_a_restart_resumes_a_genuine_checkpoint(cluster) -> None:
    fake, clock = cluster
    first, d = work(fake), stuck()
    assert look(first, d, fake) == 0
    clock.now += 20
    assert look(first, d, fake) == 20
    assert mark(fake).split(" ")[:3] == [rs_name("app:2.0.0"), state.digest(state.stale_key(d, DEPLOYMENTS)), "20"]
    clock.now += 100  # the first process is gone; the next one starts later
    second = work(fake)
    assert look(second, d, fake) == 20  # goes on from the checkpoint: later, never sooner
    clock.now += 5
    assert look(second, d, fake) == 25


def test_a_tenants_checkpoint_does_not_end_the_deadline_sooner(cluster) -> None:
    fake, _clock = cluster
    d = stuck()
    digest_ = state.digest(state.stale_key(d, DEPLOYMENTS))  # readable to anyone who can read the Deployment
    for forged in (
        f"{rs_name('app:2.0.0')} {digest_} 10000000",
        checkpoints.mark(b"guessed".ljust(32), rs_name("app:2.0.0"), "uid-of-2", digest_, 10**7),
    ):
        fake.replicasets[1]["metadata"]["annotations"][decision.NO_PROGRESS] = forged
        w = work(fake)
        assert look(w, d, fake) == 0
        assert mark(fake) == ""  # and it is gone
    # signed under another process's own key (no shared Secret): ignored as well
    fake.replicasets[1]["metadata"]["annotations"][decision.NO_PROGRESS] = checkpoints.mark(
        checkpoints.new_key(), rs_name("app:2.0.0"), "uid-of-2", digest_, 40
    )
    assert look(work(fake), d, fake) == 0


def test_a_checkpoint_of_a_replicaset_created_again_under_the_same_name_counts_for_nothing(cluster) -> None:
    fake, clock = cluster
    d, first = stuck(), work(fake)
    look(first, d, fake)
    clock.now += 30
    look(first, d, fake)
    assert mark(fake)
    fake.replicasets[1]["metadata"]["uid"] = "uid-of-2-again"
    assert look(work(fake), d, fake) == 0


def test_an_earlier_episode_of_the_same_state_is_never_resumed(cluster) -> None:
    # A -> B -> A: the replica counts return to the same tuple, so the state digest is the same. The
    # first episode's 30 s must not count for the second, even after a restart in the middle of it.
    fake, clock = cluster
    a, b = stuck(updated=1), stuck(updated=2)
    assert state.stale_key(a, DEPLOYMENTS) != state.stale_key(b, DEPLOYMENTS)
    first = work(fake)
    look(first, a, fake)
    clock.now += 30
    assert look(first, a, fake) == 30 and mark(fake).split(" ")[2] == "30"  # episode A1, checkpointed
    clock.now += 1
    assert look(first, b, fake) == 0  # progress: B, timed anew
    assert mark(fake) == ""  # A1's checkpoint is gone with it
    clock.now += 1
    assert look(first, a, fake) == 0  # A again: a new episode
    clock.now += 5
    assert look(first, a, fake) == 5
    second = work(fake)  # a restart in the middle of A2
    assert look(second, a, fake) == 0  # not 30 (nor 35): A1 is over, and A2 had no checkpoint yet


def test_a_new_episode_does_not_start_until_the_old_mark_is_gone(cluster, monkeypatch) -> None:
    fake, clock = cluster
    a, b, first = stuck(updated=1), stuck(updated=2), work(fake)
    look(first, a, fake)
    clock.now += 30
    look(first, a, fake)
    look(first, b, fake)
    clock.now += 1

    def refused(*_: Any) -> None:
        raise kube.ApiError(503, "Service Unavailable", "try later")

    fake.replicasets[1]["metadata"]["annotations"][decision.NO_PROGRESS] = checkpoints.mark(
        KEY, rs_name("app:2.0.0"), "uid-of-2", state.digest(state.stale_key(a, DEPLOYMENTS)), 30
    )  # (as if B's removal was lost)
    fake.annotate_replicaset = refused  # type: ignore[method-assign]
    with pytest.raises(kube.ApiError):
        look(first, a, fake)  # the pass is retried: A is not timed before A1's mark is gone
    del fake.annotate_replicaset
    assert look(first, a, fake) == 0 and mark(fake) == ""


def test_completion_clears_the_mark_and_ends_the_episode(cluster, monkeypatch) -> None:
    fake, clock = cluster
    a, first = stuck(), work(fake)
    look(first, a, fake)
    clock.now += 30
    look(first, a, fake)
    assert mark(fake)
    done = stuck(updated=4)
    done["status"].update(replicas=4, updatedReplicas=4, availableReplicas=4)
    monkeypatch.setattr(recovery, "revert_if_lost", lambda *_: None)
    first.healthy_evidence = (rs_name("app:2.0.0"), done)
    recovery.healthy(first, reconcile.PassResult())
    assert mark(fake) == ""
    assert first.clocks.keys(measure.DEADLINES) == {measure.ENDED}
    clock.now += 5
    assert look(first, a, fake) == 0  # should the same state come back: a new episode


# --- the key: a Secret in the operator's namespace, created once, shared by the replicas ------------------


class FakeSecrets:
    def __init__(self, existing: bytes | None = None, race: bool = False) -> None:
        self.data = None if existing is None else base64.b64encode(existing).decode()
        self.race = race
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        self.calls.append((method, path))
        if method == "GET":
            if self.data is None:
                raise kube.ApiError(404, "Not Found", "secrets not found")
            return {"data": {"key": self.data}}
        assert method == "POST" and path == "/api/v1/namespaces/ops/secrets"
        assert body["metadata"]["name"] == "ar-checkpoint"
        if self.race:  # another replica created it first
            self.data = base64.b64encode(b"the other replica's key: 32 byte").decode()
            raise kube.ApiError(409, "Conflict", "already exists")
        self.data = body["data"]["key"]
        return body


def test_the_key_is_read_from_the_secret() -> None:
    fake = FakeSecrets(existing=KEY)
    assert reconcile.checkpoint_key(fake, "ops", "ar-checkpoint") == KEY  # type: ignore[arg-type]
    assert fake.calls == [("GET", "/api/v1/namespaces/ops/secrets/ar-checkpoint")]


def test_the_secret_is_created_with_a_random_key_when_absent() -> None:
    fake = FakeSecrets()
    key = reconcile.checkpoint_key(fake, "ops", "ar-checkpoint")  # type: ignore[arg-type]
    assert len(key) == 32 and base64.b64decode(fake.data) == key


def test_two_replicas_creating_the_secret_at_once_use_one_key() -> None:
    fake = FakeSecrets(race=True)
    assert reconcile.checkpoint_key(fake, "ops", "ar-checkpoint") == b"the other replica's key: 32 byte"  # type: ignore[arg-type]
    assert [m for m, _ in fake.calls] == ["GET", "POST", "GET"]


class NoApi:
    def request(self, *_: Any, **__: Any) -> None:
        pytest.fail("no API call without a Secret to read")


@pytest.mark.parametrize("scope", [(None, "ar-checkpoint"), ("ops", None), (None, None)])
def test_without_a_secret_a_key_of_this_process_only(scope) -> None:
    key = reconcile.checkpoint_key(NoApi(), *scope)  # type: ignore[arg-type]
    assert len(key) == 32 and key != reconcile.checkpoint_key(NoApi(), *scope)  # type: ignore[arg-type]  # random


def test_a_secret_that_cannot_be_had_leaves_a_key_of_this_process() -> None:
    class Forbidden:
        def request(self, *_: Any, **__: Any) -> None:
            raise kube.ApiError(422, "Invalid", "no")

    key = reconcile.checkpoint_key(Forbidden(), "ops", "ar-checkpoint")  # type: ignore[arg-type]
    assert len(key) == 32
    bad = FakeSecrets(existing=b"short")
    key = reconcile.checkpoint_key(bad, "ops", "ar-checkpoint")  # type: ignore[arg-type]
    assert len(key) == 32 and key != b"short"  # not ours to repair: never overwritten
    assert [m for m, _ in bad.calls] == ["GET"]
