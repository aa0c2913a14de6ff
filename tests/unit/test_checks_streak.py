"""checks.streak: consecutive failures, and the bake's checkpoint (strict, signed)."""

import pytest
from hypothesis import given, strategies as st

from autorollback.checks import streak as s
from autorollback.checks.outcome import Kind
from autorollback.checks.streak import Policy, State, Streak, step

P, F, N, E = Kind.PASS, Kind.FAIL, Kind.NO_DATA, Kind.ERROR
KEY = b"k" * 32


def run(kinds: list[Kind], on_no_data: Policy = Policy.IGNORE, on_error: Policy = Policy.IGNORE) -> Streak:
    current = Streak()
    for kind in kinds:
        current = step(current, kind, on_no_data, on_error)
    return current


def test_only_consecutive_fails_count() -> None:
    assert run([F, F, F]) == Streak(3)
    assert run([F, F, P, F]) == Streak(1, passed=True)  # a blip between passes never adds up
    assert run([F, P, F, P, F]).fails == 1


def test_no_data_and_errors_neither_count_nor_reset_by_default() -> None:
    assert run([F, N, E, N, F]) == Streak(2)
    assert run([N, N, E]) == Streak(0)


def test_policies() -> None:
    assert run([F, N, F], on_no_data=Policy.FAIL) == Streak(3)
    assert run([F, E, F], on_error=Policy.FAIL) == Streak(3)
    assert run([F, N, F], on_no_data=Policy.RESET) == Streak(1)
    assert run([F, E], on_error=Policy.RESET) == Streak(0, passed=False)  # a reset is not a pass
    assert run([F, N, E], on_no_data=Policy.FAIL) == Streak(2)  # each policy for its own kind


def test_streaks_are_capped() -> None:
    assert step(Streak(s.MAX_FAILS), F) == Streak(s.MAX_FAILS)


def test_dump_and_load() -> None:
    state = State(420, {"p99-latency": Streak(0), "error-ratio": Streak(2, True)})
    assert s.dump(state) == "v1 420 error-ratio=2p,p99-latency=0"
    assert s.load(s.dump(state)) == state
    assert s.dump(State()) == "v1 0 -" and s.load("v1 0 -") == State()


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "v1",
        "v1 420",
        "v2 420 -",
        "v1 -1 -",
        "v1 0420 -",
        "v1 99999999 -",
        "v1 1e3 -",
        "v1 420 error-ratio=2p,error-ratio=1",  # duplicate
        "v1 420 p99=0,error-ratio=2p",  # not in order
        "v1 420 error-ratio=02",
        "v1 420 error-ratio=1001",
        "v1 420 error-ratio=2x",
        "v1 420 Error-Ratio=2",
        "v1 420 error-ratio=2 ",
        "v1  420 -",
        "v1 420 ",
        "v1 420 error-ratio=",
        "v1 420 =1",
        "v1 420 -,a=1",
        'v1 420 a=1"} or vector(1)',
        "v1 420 " + ",".join(f"c{i:02d}=0" for i in range(17)),
        "v1 420 a=1\n",
        "x" * 5000,
    ],
)
def test_garbage_is_refused(text: str | None) -> None:
    assert s.load(text) is None


@given(st.text(max_size=200))
def test_load_never_raises_and_accepts_only_canonical_text(text: str) -> None:
    state = s.load(text)
    assert state is None or s.dump(state) == text


@given(
    st.integers(0, s.MAX_ELAPSED),
    st.dictionaries(
        st.from_regex(r"[a-z0-9](?:[-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True),
        st.builds(Streak, st.integers(0, s.MAX_FAILS), st.booleans()),
        max_size=s.MAX_CHECKS,
    ),
)
def test_any_state_round_trips(elapsed: int, streaks: dict[str, Streak]) -> None:
    state = State(elapsed, streaks)
    assert s.load(s.dump(state)) == state
    assert s.unseal(KEY, s.seal(KEY, "web-5d8f9c7b6", "uid-1", state), "web-5d8f9c7b6", "uid-1") == state


def test_state_refuses_invalid_values() -> None:
    with pytest.raises(ValueError, match="elapsed"):
        State(-1)
    with pytest.raises(ValueError, match="names"):
        State(0, {"Bad Name": Streak()})
    assert State(10).with_elapsed(1e12).elapsed == s.MAX_ELAPSED and State(10).with_elapsed(12.9).elapsed == 12


def test_sealed_checkpoints_count_only_for_their_replicaset_and_key() -> None:
    state = State(300, {"error-ratio": Streak(1, True)})
    mark = s.seal(KEY, "web-1", "uid-1", state)
    assert mark.startswith("web-1 v1 300 error-ratio=1p ")
    assert s.unseal(KEY, mark, "web-1", "uid-1") == state
    assert s.unseal(KEY, mark, "web-2", "uid-1") is None  # copied onto another ReplicaSet
    assert s.unseal(KEY, mark, "web-1", "uid-2") is None  # same name, created again
    assert s.unseal(b"x" * 32, mark, "web-1", "uid-1") is None  # another key
    forged = mark.replace("v1 300", "v1 900")  # a tenant ends the bake early
    assert s.unseal(KEY, forged, "web-1", "uid-1") is None
    assert s.unseal(KEY, "web-1 v1 900 -", "web-1", "uid-1") is None  # unsigned
    for junk in (None, "", "web-1", mark + " ", "web-1  v1 300 - x"):
        assert s.unseal(KEY, junk, "web-1", "uid-1") is None
    assert s.unseal(KEY, mark, "", "uid-1") is None and s.unseal(KEY, mark, "web-1", "") is None


def test_checkpoints_are_written_only_when_they_change() -> None:
    written = State(60, {"a": Streak(1)})
    assert s.due(None, written)
    # not at every evaluation (30 s by default): every EVERY seconds of bake when no streak changed
    assert s.EVERY > 30
    assert not s.due(written, State(60 + s.EVERY - 1, {"a": Streak(1)}))
    assert s.due(written, State(60 + s.EVERY, {"a": Streak(1)}))
    assert s.due(written, State(61, {"a": Streak(2)}))
    assert s.due(written, State(61, {"a": Streak(1, True)}))
    assert s.due(written, State(0, {"a": Streak(1)}))  # went back: rewrite
    assert not s.due(written, State(60, {"a": Streak(1)}))
    assert s.due(written, State(60, {}))


def test_only_keeps_the_selected_checks() -> None:
    state = State(5, {"a": Streak(1), "b": Streak(2)})
    assert state.only(frozenset({"b", "c"})) == State(5, {"b": Streak(2)})
    assert state.streak("zzz") == Streak()
