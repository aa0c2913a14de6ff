"""checks.templates: the platform's catalog (strict) and a workload's selection by annotations."""

import json
import re

import pytest
from hypothesis import given, strategies as st

from autorollback.checks import promql, templates as t
from autorollback.checks.outcome import Limit
from autorollback.checks.streak import Policy

SEL = 'namespace="{{namespace}}",pod=~"{{pods}}"'
ERROR_RATIO = {
    "query": f'sum(rate(http_requests_total{{{SEL},code=~"5.."}}[{{{{window}}}}])) / sum(rate(http_requests_total{{{SEL}}}[{{{{window}}}}]))',
    "failIf": "result > threshold",
    "params": {"threshold": {"default": 0.05, "min": 0, "max": 0.5}, "min_requests": 20},
    "minimum": {"query": f"sum(increase(http_requests_total{{{SEL}}}[{{{{window}}}}]))", "atLeast": "min_requests"},
}
LATENCY = {
    "query": f"histogram_quantile({{{{quantile}}}}, sum by (le) (rate(h_bucket{{{SEL}}}[{{{{window}}}}])))",
    "failIf": "result >= 0.5",
    "params": {"quantile": 0.99},
    "intervalSeconds": 60,
    "failures": 2,
    "window": "2m",
    "onNoData": "fail",
    "onError": "Reset",
}
RELATIVE = {
    "query": f"histogram_quantile(0.99, sum by (le) (rate(h_bucket{{{SEL}}}[{{{{window}}}}])))",
    "failIf": "result > baseline * factor",
    "params": {"factor": 1.2},
}
UNSCOPED = 'sum(rate(http_requests_total{namespace="{{namespace}}"}[5m])) > {{threshold}}'
CATALOG = {"error-ratio": ERROR_RATIO, "p99-latency": json.dumps(LATENCY), "p99-vs-previous": RELATIVE}


def catalog() -> t.Catalog:
    return t.parse_catalog(CATALOG).strict()


def test_a_valid_catalog() -> None:
    c = catalog()
    er, lat, rel = c.templates["error-ratio"], c.templates["p99-latency"], c.templates["p99-vs-previous"]
    assert er.interval == 30 and er.failures == 3 and er.window_ms == 300_000
    assert er.on_no_data is Policy.IGNORE and er.on_error is Policy.IGNORE
    assert er.guard is not None and er.guard.at_least == t.Operand(param="min_requests")
    assert er.fail_if == t.Condition(">", t.Operand(param="threshold"))
    assert er.params["threshold"] == t.Param("threshold", "number", 0.05, 0.0, 0.5)
    assert lat.interval == 60 and lat.failures == 2 and lat.window_ms == 120_000  # from JSON text (a ConfigMap)
    assert lat.on_no_data is Policy.FAIL and lat.on_error is Policy.RESET
    assert lat.fail_if == t.Condition(">=", t.Operand(literal=0.5))
    assert rel.relative and rel.fail_if == t.Condition(">", t.Operand(param="factor"), "*")
    assert not er.relative


def test_conditions() -> None:
    params = {"m": t.Param("m", "number", 0.1), "d": t.Param("d", "duration", 60_000.0)}
    assert t._condition("result<0.99", params) == t.Condition("<", t.Operand(literal=0.99))
    assert t._condition("  result <= m ", params) == t.Condition("<=", t.Operand(param="m"))
    assert t._condition("result > baseline", params) == t.Condition(">", t.Operand(literal=0.0), "+")
    assert t._condition("result < baseline", params) == t.Condition("<", t.Operand(literal=0.0), "-")
    assert t._condition("result > baseline + m", params) == t.Condition(">", t.Operand(param="m"), "+")
    assert t._condition("result < baseline - 0.1", params) == t.Condition("<", t.Operand(literal=0.1), "-")
    for bad, message in [
        ("result > 1 or vector(1)", "is not a condition"),
        ("value > 1", "is not a condition"),
        ("result == 1", "is not a condition"),
        ("result > nope", "neither a number nor a declared parameter"),
        ("result > d", "is a duration"),
        ("result > baseline - m", "no worse than the previous one: write baseline + margin"),
        ("result < baseline + m", "write baseline - margin"),
        ("result > inf", "neither a number"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            t._condition(bad, params)


def refused(spec: object, message: str, name: str = "c") -> None:
    c = t.parse_catalog({name: spec})
    assert name not in c.templates
    (error,) = c.errors
    assert message in error, error
    with pytest.raises(t.CatalogError, match=re.escape(message)):
        c.strict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"query": "sum(rate(x[5m]))"}, 'has no namespace matcher: add namespace="{{namespace}}"'),
        ({"query": 'sum(up{namespace=~".*"})'}, "something other than"),
        ({"query": f"sum(up{{{SEL}}}) + max_over_time(sum(y)[5m:])"}, "has no namespace matcher"),
        ({"query": f"sum(up{{{SEL}}}) > {{{{threshold2}}}}"}, "unknown placeholder {{threshold2}}"),
        ({"query": "sum(up{namespace={{namespace}}})"}, "inside a quoted string"),
        ({"query": ""}, "query is missing"),
        ({"failIf": "result > 1 or vector(1)"}, "is not a condition"),
        ({"failIf": None}, "failIf is missing"),
        ({"params": {"threshold": "abc"}}, "a duration like 30s"),
        ({"params": {"threshold": True}}, "must be a number"),
        ({"params": {"threshold": 0.05, "namespace": 1}}, "not one of"),
        ({"params": {"threshold": 0.05, "Bad": 1}}, "a name is a lowercase letter"),
        ({"params": {"threshold": {"default": 0.9, "max": 0.5}}}, "within min and max"),
        ({"params": {"threshold": {"value": 0.9}}}, "write {default: ..., min: ..., max: ...}"),
        ({"params": {"threshold": 0.05, "min_requests": 1, "unused": 1}}, "declared but not used"),
        ({"params": [1]}, "params must be a mapping"),
        ({"intervalSeconds": 1}, "from 5 to 3600"),
        ({"intervalSeconds": "30s"}, "from 5 to 3600"),
        ({"failures": 0}, "from 1 to 100"),
        ({"failures": True}, "from 1 to 100"),
        ({"window": "5x"}, "write whole seconds"),
        ({"window": "1500ms"}, "write whole seconds"),
        ({"onNoData": "pass"}, "write ignore or fail or reset"),
        ({"onError": 1}, "write ignore or fail or reset"),
        ({"minimum": {"query": "sum(up)", "atLeast": "min_requests"}}, "minimum.query: selector"),
        ({"minimum": {"query": "x", "min": 1}}, "minimum must be {query"),
        ({"minimum": {"query": f"sum(up{{{SEL}}})", "atLeast": "1 or vector(1)"}}, "neither a number"),
        ({"failIf": "result > baseline + threshold", "query": UNSCOPED}, "must scope its query to the revision"),
        (
            {"failIf": "result > baseline", "query": 'sum(rate(x{namespace="{{namespace}}",app="{{workload}}"}[5m]))'},
            "must scope",
        ),
        ({"Query": "x"}, "unknown keys"),
    ],
)
def test_invalid_templates_say_what_to_write(change: dict[str, object], message: str) -> None:
    refused({**ERROR_RATIO, **change}, message)


def test_relative_margins_that_would_fail_a_revision_no_worse() -> None:
    refused({**RELATIVE, "params": {"factor": 0.9}}, "must be 1 or more")
    refused({**RELATIVE, "failIf": "result < baseline * factor", "params": {"factor": 1.5}}, "from 0 to 1")
    refused({**RELATIVE, "failIf": "result > baseline + factor", "params": {"factor": -1}}, "0 or more")


def test_names_and_shapes() -> None:
    refused(ERROR_RATIO, "the name must be", name="Error_Ratio")
    refused("{not json", "not a JSON object")
    refused([1], "must be a mapping")
    long = "a" * 40
    refused(
        {
            **ERROR_RATIO,
            "params": {"threshold": 0.05, "min_requests_long_name_abcdefg": 1},
            "minimum": {**ERROR_RATIO["minimum"], "atLeast": "min_requests_long_name_abcdefg"},
        },
        "longer than Kubernetes allows",
        name=long,
    )  # type: ignore[dict-item]


def test_one_bad_entry_does_not_hide_the_good_ones() -> None:
    c = t.parse_catalog({**CATALOG, "broken": {"query": "up", "failIf": "result > 1"}})
    assert set(c.templates) == set(CATALOG) and len(c.errors) == 1 and c.errors[0].startswith('check "broken"')
    assert t.parse_catalog(None).templates == {}


def test_durations() -> None:
    assert (
        t.parse_duration("1h30m") == 5_400_000
        and t.parse_duration("90s") == 90_000
        and t.parse_duration("250ms") == 250
    )
    for bad in ("", "5", "30m1h", "1.5m", "-1m", "5 m", "0s"):
        with pytest.raises(ValueError, match="duration"):
            t.parse_duration(bad)


def test_duration_parameters_render_as_durations() -> None:
    spec = {**ERROR_RATIO, "params": {**ERROR_RATIO["params"], "range": "10m"}}  # type: ignore[dict-item]
    spec["query"] = f"sum(rate(x{{{SEL}}}[{{{{range}}}}])) / sum(rate(y{{{SEL}}}[{{{{window}}}}])) > {{{{threshold}}}}"
    tpl = t.parse_template("c", spec)
    sel = t.select({t.CHECKS: "c", t.CHECK + "c.range": "1h"}, t.Catalog({"c": tpl}))
    (check,) = sel.checks
    query, guard = check.queries(promql.Scope("ns", "w", "w-1", "1", ("w-1-a",), 60))
    assert "[3600s]" in query and "[60s]" in query and query.endswith("> 0.05") and guard is not None


# -- a workload's selection -------------------------------------------------------------


def test_selection_with_defaults_and_overrides() -> None:
    s = t.select(
        {t.CHECKS: " Error-Ratio , p99-latency,error-ratio", t.CHECK + "error-ratio.threshold": "0.02"}, catalog()
    )
    assert s.problems == () and s.bake_seconds == 600
    er, lat = s.checks
    assert er.name == "error-ratio" and er.values == {"threshold": 0.02, "min_requests": 20.0}
    assert er.limit == Limit(">", 0.02) and er.minimum == 20.0
    assert lat.limit == Limit(">=", 0.5) and lat.minimum is None and lat.rendered() == {"quantile": "0.99"}


def test_nothing_selected() -> None:
    assert t.select(None, catalog()) == t.Selection()
    assert t.select({t.CHECKS: ""}, catalog()).checks == ()


@pytest.mark.parametrize(
    "value",
    ["1 or vector(1)", "0.05) or vector(1", "5%", "nan", "inf", "1e400", "", " ", "0x10", "1_0", "0.05\nor vector(1)"],
)
def test_a_tenant_threshold_is_a_plain_number_or_the_check_does_not_run(value: str) -> None:
    s = t.select({t.CHECKS: "error-ratio,p99-latency", t.CHECK + "error-ratio.threshold": value}, catalog())
    assert [c.name for c in s.checks] == ["p99-latency"]
    (p,) = s.problems
    assert p.key == "autorollback.io/check.error-ratio.threshold" and "check error-ratio is not run" in p.text()


def test_bounds_declared_by_the_platform_hold() -> None:
    s = t.select({t.CHECKS: "error-ratio", t.CHECK + "error-ratio.threshold": "0.9"}, catalog())
    (p,) = s.problems
    assert s.checks == () and "from 0 to 0.5" in p.text()
    s = t.select({t.CHECKS: "p99-vs-previous", t.CHECK + "p99-vs-previous.factor": "0.5"}, catalog())
    (p,) = s.problems
    assert s.checks == () and "1 or more" in p.text() and p.value == "0.5"


def test_selection_problems() -> None:
    s = t.select(
        {
            t.CHECKS: "error-ratio,nope",
            t.CHECK + "p99-latency.quantile": "0.9",  # not selected
            t.CHECK + "error-ratio.nope": "1",  # no such parameter
            t.CHECK + "error-ratio": "1",  # no parameter at all
            t.BAKE_SECONDS: "ten minutes",
        },
        catalog(),
    )
    assert [c.name for c in s.checks] == ["error-ratio"] and s.bake_seconds == 600
    texts = sorted(p.text() for p in s.problems)
    assert len(texts) == 5
    assert any(
        'there is no check "nope"; the checks are: error-ratio, p99-latency, p99-vs-previous' in x for x in texts
    )
    assert any("is not selected in autorollback.io/checks" in x for x in texts)
    assert any('has no parameter "nope" (its parameters: min_requests, threshold)' in x for x in texts)
    assert any("write autorollback.io/check.<check>.<parameter>" in x for x in texts)
    assert any("bake-seconds" in x and "the default (600) is used" in x for x in texts)


@pytest.mark.parametrize(("value", "seconds"), [("0", 0), ("1200", 1200), ("90s", 90), (" 30 ", 30), ("86400", 86400)])
def test_bake_seconds(value: str, seconds: int) -> None:
    assert t.select({t.BAKE_SECONDS: value}, catalog()).bake_seconds == seconds


@pytest.mark.parametrize("value", ["-1", "86401", "1e3", "1.5", "", "10m"])
def test_invalid_bake_seconds_keeps_the_default(value: str) -> None:
    s = t.select({t.BAKE_SECONDS: value}, catalog())
    assert s.bake_seconds == t.BAKE_DEFAULT and len(s.problems) == 1


def test_annotation_names_are_consistent_with_the_others() -> None:
    assert t.CHECKS == "autorollback.io/checks" and t.BAKE_SECONDS == "autorollback.io/bake-seconds"
    assert t.CHECK + "error-ratio.threshold" == "autorollback.io/check.error-ratio.threshold"


@given(st.dictionaries(st.text(max_size=60), st.text(max_size=60), max_size=8))
def test_any_annotations_give_a_selection(annotations: dict[str, str]) -> None:
    s = t.select({**annotations, t.CHECKS: "error-ratio"}, catalog())
    for check in s.checks:
        query, guard = check.queries(promql.Scope("ns", "w", "w-1", "1", ("w-1-a",), 60))
        promql.enforce_namespace(query, "ns")
        assert guard is not None
        promql.enforce_namespace(guard, "ns")
        assert 0 <= check.limit.amount <= 0.5
