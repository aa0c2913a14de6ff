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


# -- a workload's own checks (checks.promqlNamespaces) --------------------------------------

OWN_QUERY = f"max(queue_depth{{{SEL}}})"
ALLOWED = frozenset({"team-a"})


def own(extra: dict[str, str] | None = None, namespace: str = "team-a", **keys: str) -> t.Selection:
    annotations = {
        t.CHECKS: "queue,error-ratio",
        t.CHECK + "queue.query": OWN_QUERY,
        t.CHECK + "queue.fail-if": "result > 100",
    }
    annotations.update({t.CHECK + "queue." + k.replace("_", "-"): v for k, v in keys.items()})
    return t.select({**annotations, **(extra or {})}, catalog(), namespace, ALLOWED)


def test_an_own_check_in_an_allowed_namespace_runs_like_a_template() -> None:
    s = own(interval_seconds="5", failures="2", on_no_data="fail")
    assert s.problems == ()
    queue, er = s.checks
    assert queue.name == "queue" and queue.template.own and not er.template.own
    assert queue.limit == Limit(">", 100) and queue.template.interval == 5 and queue.template.failures == 2
    assert queue.template.on_no_data is Policy.FAIL
    query, guard = queue.queries(promql.Scope("team-a", "w", "w-1", "1", ("w-1-a",), 60))
    assert query == 'max(queue_depth{namespace="team-a",pod=~"^(?:w-1-a)$"})' and guard is None


def test_an_own_check_outside_the_allowed_namespaces_never_runs() -> None:
    s = own(namespace="team-b")
    assert [c.name for c in s.checks] == ["error-ratio"]
    (p,) = s.problems
    assert p.key == t.CHECK + "queue.query" and "check queue is not run" in p.text()
    assert "the platform must list it in checks.promqlNamespaces" in p.text()
    assert t.select({t.CHECKS: "queue", t.CHECK + "queue.query": OWN_QUERY}, catalog()).checks == ()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('max(queue_depth{namespace="other"})', 'namespace="{{namespace}}"'),
        ('max(queue_depth{namespace=~".+"})', "namespace"),
        ('max(queue_depth{namespace="{{namespace}}"}) + max(queue_depth{pod="x"})', "no namespace matcher"),
        ('max(queue_depth{namespace="{{namespace}}"} or {__name__=~".+"})', "namespace"),
        ('max(queue_depth{namespace="{{namespace}}",pod=~"{{ threshold }}"})', "unknown placeholder"),
        ('max(queue_depth{namespace="{{namespace}}"}', "does not parse"),
        ("x" * (t.MAX_OWN_QUERY + 1), "at most 2000 characters"),
    ],
)
def test_an_own_query_reaching_out_of_its_namespace_or_invalid_never_runs(query: str, message: str) -> None:
    s = own(query=query)
    assert [c.name for c in s.checks] == ["error-ratio"]
    (p,) = s.problems
    assert message in p.text() and "check queue is not run" in p.text()


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"fail_if": "result > threshold"}, "neither a number nor a declared parameter"),
        ({"fail_if": "1 or vector(1)"}, "is not a condition"),
        ({"interval_seconds": "1"}, "from 5 to 3600"),
        ({"threshold": "0.1"}, 'has no key "threshold"'),
    ],
)
def test_an_own_check_is_validated_as_a_template(keys: dict[str, str], message: str) -> None:
    s = own(**keys)
    (p,) = s.problems
    assert message in p.text() and [c.name for c in s.checks] == ["error-ratio"]


def test_an_own_check_must_be_selected_and_must_not_shadow_a_platform_check() -> None:
    s = own({t.CHECKS: "error-ratio"})
    (p,) = s.problems
    assert "is not selected in autorollback.io/checks" in p.text() and [c.name for c in s.checks] == ["error-ratio"]
    s = t.select({t.CHECKS: "error-ratio", t.CHECK + "error-ratio.query": OWN_QUERY}, catalog(), "team-a", ALLOWED)
    (p,) = s.problems
    assert "error-ratio is the platform's check: a check of your own must take another name" in p.text()
    assert [c.template.query for c in s.checks] == [ERROR_RATIO["query"]]


def test_an_unknown_check_says_own_checks_can_be_defined_only_where_allowed() -> None:
    where = "or define your own with autorollback.io/check.<check>.query"
    assert where in t.select({t.CHECKS: "nope"}, catalog(), "team-a", ALLOWED).problems[0].text()
    assert where not in t.select({t.CHECKS: "nope"}, catalog(), "team-b", ALLOWED).problems[0].text()


@given(
    st.dictionaries(st.sampled_from(["query", "fail-if", "window", "failures", "x"]), st.text(max_size=80), max_size=5)
)
def test_any_own_annotations_give_a_selection_scoped_to_the_namespace(keys: dict[str, str]) -> None:
    s = t.select(
        {t.CHECKS: "queue", **{t.CHECK + "queue." + k: v for k, v in keys.items()}}, catalog(), "team-a", ALLOWED
    )
    for check in s.checks:
        query, _ = check.queries(promql.Scope("team-a", "w", "w-1", "1", ("w-1-a",), 60))
        promql.enforce_namespace(query, "team-a")
