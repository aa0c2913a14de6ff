"""checks.outcome: a Prometheus instant-query answer -> pass, fail, no data or error."""

import json
import math

import pytest
from hypothesis import given, strategies as st

from autorollback.checks.outcome import Kind, Limit, Outcome, Reading, classify, read, read_body

T = 1764000000.123  # Prometheus's evaluation time in the answers below (never this process's clock)


def vector(*values: str, labels: list[dict[str, str]] | None = None) -> dict[str, object]:
    labels = labels or [{} for _ in values]
    result = [{"metric": m, "value": [T, v]} for m, v in zip(labels, values, strict=True)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def scalar(value: str) -> dict[str, object]:
    return {"status": "success", "data": {"resultType": "scalar", "result": [T, value]}}


def test_one_series_and_a_scalar_are_numbers_at_prometheus_time() -> None:
    assert read(vector("0.12", labels=[{"job": "web"}])) == Reading(value=0.12, at=T)
    assert read(scalar("3")) == Reading(value=3.0, at=T)
    assert read(vector("1e-3")).value == 0.001


def test_empty_result_is_no_data() -> None:
    r = read(vector())
    assert r.value is None and not r.error and "no series" in r.no_data


@pytest.mark.parametrize("value", ["NaN", "+Inf", "-Inf", "Inf"])
def test_nan_and_infinities_are_no_data(value: str) -> None:
    for answer in (vector(value), scalar(value)):
        r = read(answer)
        assert r.value is None and r.at == T and not r.error and value in r.no_data


def test_several_series_is_an_error_naming_label_names_only() -> None:
    secret = 'hunter2"} \\ \n evil'
    r = read(vector("1", "2", labels=[{"pod": "a", "code": "500"}, {"pod": secret, "token": secret}]))
    assert r.value is None and r.error
    assert "2 series" in r.error and "code, pod, token" in r.error
    assert "hunter2" not in r.error and "500" not in r.error and '"a"' not in r.error


def test_several_series_with_odd_label_names() -> None:
    labels = [{f"l{i}": "v"} for i in range(12)] + [{"weird\nname": "v"}]
    r = read(vector(*["1"] * 13, labels=labels))
    assert "and 3 more" in r.error and "\n" not in r.error


@pytest.mark.parametrize(
    ("error_type", "http"),
    [
        ("bad_data", 400),
        ("execution", 422),
        ("timeout", 503),
        ("canceled", 499),
        ("internal", 500),
        ("unavailable", 503),
    ],
)
def test_error_status_is_an_error_with_its_type(error_type: str, http: int) -> None:
    body = json.dumps({"status": "error", "errorType": error_type, "error": 'parse error: unexpected "}"\n'})
    r = read_body(http, body)
    assert r.error_type == error_type and r.value is None
    assert error_type in r.error and "\n" not in r.error and "unexpected" in r.error
    o = classify(Limit(">", 1), r)
    assert o.kind is Kind.ERROR and o.configuration_error is (error_type == "bad_data")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (None, "not a JSON object"),
        ([1], "not a JSON object"),
        ({"status": "weird"}, "no status"),
        ({"status": "success"}, "no data object"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "returned a matrix"),
        ({"status": "success", "data": {"resultType": "string", "result": [T, "x"]}}, "returned a string"),
        ({"status": "success", "data": {"resultType": "vector", "result": {}}}, "not a list"),
        ({"status": "success", "data": {"resultType": "vector", "result": [1]}}, "not an object"),
        (
            {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "histogram": [T, {}]}]}},
            "histogram",
        ),
        ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}, "no value"),
        ({"status": "success", "data": {"resultType": "scalar", "result": [T]}}, "pair"),
        ({"status": "success", "data": {"resultType": "scalar", "result": ["now", "1"]}}, "timestamp"),
        ({"status": "success", "data": {"resultType": "scalar", "result": [True, "1"]}}, "timestamp"),
        ({"status": "success", "data": {"resultType": "scalar", "result": [T, 1]}}, "value is not a number"),
        ({"status": "success", "data": {"resultType": "scalar", "result": [T, "1_000"]}}, "value is not a number"),
        ({"status": "success", "data": {"resultType": "scalar", "result": [T, "infinity"]}}, "value is not a number"),
        ({"status": "error"}, "(no type): (no message)"),
    ],
)
def test_malformed_answers_are_errors(answer: object, message: str) -> None:
    r = read(answer)
    assert r.value is None and message in r.error


def test_http_answers() -> None:
    assert (
        read_body(502, b"<html>Bad Gateway</html>").error
        == "HTTP 502: the answer is not JSON (not Prometheus, or a proxy in between)"
    )
    assert read_body(200, b"\xff\xfe").error
    assert "HTTP 500" in read_body(500, json.dumps(scalar("1"))).error
    assert read_body(200, json.dumps(scalar("1")).encode()) == Reading(value=1.0, at=T)


ABOVE = Limit(">", 0.05)


@pytest.mark.parametrize(("value", "kind"), [("0.06", Kind.FAIL), ("0.05", Kind.PASS), ("0", Kind.PASS)])
def test_absolute_limit(value: str, kind: Kind) -> None:
    o = classify(ABOVE, read(vector(value)))
    assert o == Outcome(kind, float(value), 0.05, None, T)


def test_every_operator() -> None:
    for op, fails in [(">", [2.0]), (">=", [1.0, 2.0]), ("<", [0.0]), ("<=", [0.0, 1.0])]:
        for v in (0.0, 1.0, 2.0):
            assert (classify(Limit(op, 1.0), Reading(v, T)).kind is Kind.FAIL) is (v in fails)


def test_descriptions() -> None:
    fail = classify(ABOVE, Reading(0.2, T))
    assert fail.describe(">") == "0.2 > 0.05"
    assert classify(ABOVE, Reading(0.01, T)).describe(">") == "0.01 <= 0.05"
    assert classify(ABOVE, read(vector())).describe(">") == "the query returned no series"
    assert Limit(">", 1.2, "*").describe() == "result > baseline * 1.2" and ABOVE.describe() == "result > 0.05"


def test_traffic_guard_below_minimum_is_no_data() -> None:
    busy, quiet = Reading(500.0, T), Reading(3.0, T)
    assert classify(ABOVE, Reading(0.5, T), busy, 20.0).kind is Kind.FAIL
    o = classify(ABOVE, Reading(0.5, T), quiet, 20.0)
    assert o.kind is Kind.NO_DATA and "traffic 3 is below the minimum 20" in o.detail
    assert classify(ABOVE, Reading(0.5, T), read(vector()), 20.0).kind is Kind.NO_DATA
    o = classify(ABOVE, Reading(0.5, T), Reading(error="boom"), 20.0)
    assert o.kind is Kind.ERROR and "traffic guard" in o.detail
    assert classify(ABOVE, read(vector()), busy, 20.0).kind is Kind.NO_DATA  # traffic but no ratio


def test_relative_fails_only_when_worse_by_the_margin() -> None:
    factor = Limit(">", 1.2, "*")
    old = Reading(0.100, T)
    assert classify(factor, Reading(0.119, T), baseline=old).kind is Kind.PASS
    o = classify(factor, Reading(0.125, T), baseline=old)
    assert o.kind is Kind.FAIL and o.baseline == 0.1 and o.bound == pytest.approx(0.12)
    assert "(previous revision 0.1)" in o.describe(">")
    margin = Limit("<", 0.01, "-")  # a success ratio may drop by at most 0.01
    assert classify(margin, Reading(0.985, T), baseline=Reading(0.99, T)).kind is Kind.PASS
    assert classify(margin, Reading(0.975, T), baseline=Reading(0.99, T)).kind is Kind.FAIL


def test_relative_without_the_old_value_is_no_data() -> None:
    rel = Limit(">", 0.0, "+")
    assert classify(rel, Reading(1.0, T)).kind is Kind.NO_DATA
    assert classify(rel, Reading(1.0, T), baseline=read(vector())).kind is Kind.NO_DATA
    assert classify(rel, Reading(1.0, T), baseline=read(vector("NaN"))).kind is Kind.NO_DATA
    assert classify(rel, Reading(1.0, T), baseline=Reading(error="x")).kind is Kind.ERROR
    assert classify(rel, Reading(1.0, T), baseline=Reading(1e308, T)).kind is Kind.PASS
    assert (
        classify(Limit(">", 10.0, "*"), Reading(1.0, T), baseline=Reading(1e308, T)).kind is Kind.NO_DATA
    )  # bound inf


def test_invalid_limits() -> None:
    for args in [("==", 1.0, ""), (">", math.nan, ""), (">", 1.0, "/")]:
        with pytest.raises(ValueError, match="invalid limit"):
            Limit(*args)  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=12,
)


@given(
    st.one_of(
        json_values,
        st.builds(
            lambda t, r: {"status": "success", "data": {"resultType": t, "result": r}},
            st.sampled_from(["vector", "scalar", "matrix", None]),
            json_values,
        ),
    )
)
def test_any_answer_reads_without_raising(answer: object) -> None:
    r = read(answer)
    assert (r.value is None) or (math.isfinite(r.value) and r.at is not None and not r.error)
    o = classify(ABOVE, r)
    assert o.kind in Kind
