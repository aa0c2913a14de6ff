"""checks.bake: a revision's checks run during the rollout and for the bake time after, then stop."""

from hypothesis import given, strategies as st

from autorollback.checks import bake as b, templates as t
from autorollback.checks.outcome import Kind, Limit, Outcome, Reading, classify, read
from autorollback.checks.streak import State, Streak
from autorollback.workloads import deployment as deployments, statefulset as statefulsets

from factories import replicaset, sts_revision

T = 1764000000.0
SEL = 'namespace="{{namespace}}",pod=~"{{pods}}"'
CATALOG = t.parse_catalog(
    {
        "error-ratio": {
            "query": f"sum(rate(e{{{SEL}}}[{{{{window}}}}]))",
            "failIf": "result > threshold",
            "params": {"threshold": 0.05},
        },
        "latency": {"query": f"max(l{{{SEL}}})", "failIf": "result > 0.5", "failures": 2, "onNoData": "fail"},
    }
).strict()
SELECTION = t.select({t.CHECKS: "error-ratio,latency", t.BAKE_SECONDS: "600"}, CATALOG)
ER, LAT = SELECTION.checks


def outcome(check: t.Check, value: float | None, at: float = T) -> Outcome:
    reading = (
        Reading(value, at)
        if value is not None
        else read({"status": "success", "data": {"resultType": "vector", "result": []}})
    )
    return classify(check.limit, reading)


def test_three_consecutive_fails_roll_back_with_the_facts() -> None:
    bake = b.begin(SELECTION.checks)
    for i, v in enumerate([0.2, 0.3, 0.4]):
        assert bake.active
        bake = b.observe(bake, ER, outcome(ER, v, T + 30 * i))
    assert not bake.active
    assert bake.result == b.Failed("error-ratio", 0.4, 0.05, ">", 3, T + 60)
    assert bake.result.reason() == "MetricCheckFailed: error-ratio 0.4 > 0.05 (3 consecutive)"


def test_a_blip_does_not_roll_back() -> None:
    bake = b.begin(SELECTION.checks)
    for v in [0.2, 0.2, 0.01, 0.2, 0.2, None, 0.01, 0.2]:
        bake = b.observe(bake, ER, outcome(ER, v))
    assert bake.active and bake.state.streak("error-ratio") == Streak(1, True)


def test_no_data_counted_as_a_failure_when_the_template_says_so() -> None:
    bake = b.observe(b.begin(SELECTION.checks), LAT, outcome(LAT, 0.9))
    bake = b.observe(bake, LAT, outcome(LAT, None))
    assert isinstance(bake.result, b.Failed) and bake.result.value is None and bake.result.consecutive == 2
    assert (
        bake.result.reason()
        == "MetricCheckFailed: latency no data counted as a failure: the query returned no series (2 consecutive)"
    )


def test_checks_run_during_the_rollout_and_the_bake_counts_after_completion() -> None:
    bake = b.begin(SELECTION.checks)
    bake = b.advance(bake, SELECTION.checks, complete=False, seconds=900, bake_seconds=600)
    assert bake.active and bake.seconds == 0 and b.remaining(bake, 600) == 600
    bake = b.observe(bake, ER, outcome(ER, 0.01))
    bake = b.observe(bake, LAT, outcome(LAT, 0.1))
    bake = b.advance(bake, SELECTION.checks, complete=True, seconds=599.5, bake_seconds=600)
    assert bake.active and bake.state.elapsed == 599 and b.remaining(bake, 600) == 0.5
    bake = b.advance(bake, SELECTION.checks, complete=True, seconds=0.5, bake_seconds=600)
    assert bake.result == b.Passed(("error-ratio", "latency"))


def test_a_failure_during_the_rollout_rolls_back_at_once() -> None:
    bake = b.begin(SELECTION.checks)
    bake = b.observe(bake, LAT, outcome(LAT, 0.9))
    bake = b.observe(bake, LAT, outcome(LAT, 0.8))
    assert isinstance(bake.result, b.Failed) and bake.result.check == "latency"


def test_nothing_after_the_end() -> None:
    bake = b.begin(SELECTION.checks)
    bake = b.observe(bake, ER, outcome(ER, 0.01))
    bake = b.observe(bake, LAT, outcome(LAT, 0.01))
    done = b.advance(bake, SELECTION.checks, complete=True, seconds=600, bake_seconds=600)
    assert isinstance(done.result, b.Passed)
    late = done
    for _ in range(5):
        late = b.observe(late, ER, outcome(ER, 0.9))  # a late answer never rolls back a baked release
    assert late == done and b.advance(done, SELECTION.checks, True, 100, 600) == done and b.remaining(done, 600) == 0


def test_a_bake_with_only_no_data_and_errors_is_unverified() -> None:
    bake = b.begin(SELECTION.checks)
    bake = b.observe(bake, ER, outcome(ER, None))
    bake = b.observe(bake, ER, classify(ER.limit, Reading(error="timeout")))
    bake = b.observe(bake, ER, outcome(ER, 0.9))  # one fail, fewer than three: still not a pass
    bake = b.observe(bake, LAT, outcome(LAT, 0.1))
    bake = b.advance(bake, SELECTION.checks, complete=True, seconds=601, bake_seconds=600)
    assert bake.result == b.Unverified(("error-ratio",))
    assert bake.result.reason() == "BakeUnverified: no passing evaluation of error-ratio during the bake"


def test_zero_bake_seconds_checks_only_during_the_rollout() -> None:
    bake = b.advance(b.begin(SELECTION.checks), SELECTION.checks, complete=True, seconds=0, bake_seconds=0)
    assert bake.result == b.Unverified(("error-ratio", "latency"))
    assert b.advance(b.begin(()), (), True, 0, 0).result == b.Passed(())


def test_a_resumed_bake_goes_on_from_its_checkpoint() -> None:
    checkpoint = State(400, {"error-ratio": Streak(2, True), "gone": Streak(5)})
    bake = b.begin(SELECTION.checks, checkpoint)
    assert bake.seconds == 400 and set(bake.state.streaks) == {"error-ratio"}
    bake = b.observe(bake, ER, outcome(ER, 0.9))
    assert isinstance(bake.result, b.Failed) and bake.result.consecutive == 3
    bake = b.advance(b.begin(SELECTION.checks, checkpoint), SELECTION.checks, True, 199, 600)
    assert bake.active and bake.state.elapsed == 599


def test_relative_failure_reason_names_the_previous_value() -> None:
    f = b.Failed("p99", 0.3, 0.24, ">", 3, T, "", 0.2)
    assert f.reason() == "MetricCheckFailed: p99 0.3 > 0.24 (previous revision 0.2) (3 consecutive)"
    o = classify(Limit(">", 1.2, "*"), Reading(0.3, T), baseline=Reading(0.2, T))
    assert o.kind is Kind.FAIL


def test_the_baseline_is_the_newest_older_revision_still_serving() -> None:
    rs = deployments.revisions([replicaset(1, "a:1", available=2), replicaset(2, "a:2"), replicaset(3, "a:3")])
    assert b.baseline(rs, rs[0]) == rs[2]  # revision 2 has no pod available: revision 1 serves
    assert b.baseline(rs, rs[2]) is None
    # a ControllerRevision counts no pods: the revisions with pods left are named by the shell
    crs = statefulsets.STATEFULSETS.revisions([sts_revision(n, f"app:{n}.0.0") for n in (1, 2, 3)])
    assert b.baseline(crs, crs[0]) is None
    assert b.baseline(crs, crs[0], {crs[2].name}) == crs[2]
    assert b.baseline(crs, crs[0], {crs[1].name, crs[2].name}) == crs[1]
    assert b.baseline(crs, crs[0], {crs[0].name}) is None  # its own pods are no baseline
    # with pods left on two older revisions, a broken one never, the one known healthy first
    marked = statefulsets.STATEFULSETS.revisions(
        [
            sts_revision(3, "app:3.0.0"),
            sts_revision(2, "app:2.0.0", failed_at="2026-11-26T10:00:00Z revision 2"),
            sts_revision(1, "app:1.0.0", healthy_at="revision 1 generation 1"),
        ]
    )
    both = {marked[1].name, marked[2].name}
    assert marked[1].failed and b.baseline(marked, marked[0], both) == marked[2]
    unproven = statefulsets.STATEFULSETS.revisions(
        [
            sts_revision(3, "app:3.0.0"),
            sts_revision(2, "app:2.0.0"),
            sts_revision(1, "app:1.0.0", healthy_at="revision 1 generation 1"),
        ]
    )
    assert b.baseline(unproven, unproven[0], {unproven[1].name, unproven[2].name}) == unproven[2]
    assert b.baseline(unproven, unproven[0], {unproven[1].name}) == unproven[1]  # not known healthy, nor failed


@given(
    st.lists(
        st.tuples(st.sampled_from([0, 1]), st.one_of(st.none(), st.floats(0, 1)), st.floats(0, 120), st.booleans()),
        max_size=40,
    )
)
def test_the_bake_rolls_back_only_on_enough_consecutive_fails(
    events: list[tuple[int, float | None, float, bool]],
) -> None:
    bake = b.begin(SELECTION.checks)
    run = {"error-ratio": 0, "latency": 0}
    for index, value, seconds, complete in events:
        check = SELECTION.checks[index]
        before = bake
        bake = b.observe(bake, check, outcome(check, value))
        if before.active:
            o = outcome(check, value)
            if o.kind is Kind.PASS:
                run[check.name] = 0
            elif o.kind is Kind.FAIL or check.name == "latency":  # latency: no data counts as a failure
                run[check.name] += 1
            assert isinstance(bake.result, b.Failed) is (run[check.name] >= check.template.failures)
        bake = b.advance(bake, SELECTION.checks, complete, seconds, 600)
        assert bake.state.elapsed <= bake.seconds + 1


def test_the_core_imports_no_kopf_kubernetes_or_http() -> None:
    import subprocess
    import sys

    code = (
        "import sys, autorollback.checks.bake, autorollback.checks.templates;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('kopf', 'kubernetes', 'aiohttp', 'requests', 'urllib3', 'http')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_which_revisions_are_baked() -> None:
    from autorollback import history, ledger
    from autorollback.workloads import deployment as deployments

    from factories import replicaset, rs_name

    def rev(
        image: str, marks: dict[str, str] | None = None, entries: tuple[ledger.Entry, ...] = ()
    ) -> history.Revision:
        return deployments.revisions([replicaset(3, image, marks)], entries)[0]

    assert b.skipped(rev("a:3")) == ""  # a new release
    restored = ledger.Entry(rs_name("a:4"), rs_name("a:3"), "2026-11-26T09:30:00Z", "2026-11-26T09:30:01Z")
    assert "restored" in b.skipped(rev("a:3", entries=(restored,)))  # no ping-pong
    assert "healthy" in b.skipped(rev("a:3", {history.HEALTHY_AT: "revision 3"}))
    assert "healthy" not in b.skipped(rev("a:3", {history.HEALTHY_AT: "revision 2"}))  # reused by revision 3
    assert "unverified" in b.skipped(rev("a:3", {history.UNVERIFIED_AT: "revision 3 checks x"}))
    assert "failed" in b.skipped(rev("a:3", {history.FAILED_AT: "2026-11-26T09:30:00Z revision 3"}))


def test_a_failed_bake_is_a_failure_named_by_prometheuss_time() -> None:
    failed = b.Failed("error-ratio", 0.4, 0.05, ">", 3, T + 0.25)
    f = b.failure(failed, "web-abc", 7, "2026-11-26T08:00:00Z")
    assert f.reason == "MetricCheckFailed" and f.revision == 7 and f.revision_name == "web-abc"
    assert f.message == "error-ratio 0.4 > 0.05 (3 consecutive)"
    assert f.updated == "2025-11-24T16:00:00.250000Z" and " " not in f.updated  # the failure id's second part
    no_time = b.failure(
        b.Failed("latency", None, None, ">", 2, None, "no data counted as a failure"), "web-abc", 7, "C"
    )
    assert no_time.updated == "C" and "no data counted as a failure" in no_time.message


def test_a_recorded_metric_failure_is_decided_again_from_the_marks() -> None:
    from autorollback import history
    from autorollback.workloads import deployment as deployments

    from factories import replicaset, rs_name

    marks = {
        history.FAILED_AT: "2026-11-26T09:30:00.5Z revision 3",
        history.FAILED_REASON: "MetricCheckFailed: error-ratio 0.4 > 0.05 (3 consecutive)",
    }
    rev = deployments.revisions([replicaset(3, "a:3", marks)])[0]
    f = b.recorded_failure(rev)
    assert f is not None and f.id == f"{rs_name('a:3')} 2026-11-26T09:30:00.5Z"
    assert f.reason == "MetricCheckFailed" and f.message == "error-ratio 0.4 > 0.05 (3 consecutive)"
    reused = deployments.revisions([replicaset(5, "a:3", marks)])[0]  # the same template, a later rollout
    assert b.recorded_failure(reused) is None
    deadline = {**marks, history.FAILED_REASON: "ProgressDeadlineExceeded: timed out"}
    assert b.recorded_failure(deployments.revisions([replicaset(3, "a:3", deadline)])[0]) is None
