"""checks.promql: rendering a template for a revision, and the namespace rule on the parsed query."""

import re

import promql_parser
import pytest
from hypothesis import given, strategies as st

from autorollback.checks import promql
from autorollback.checks.promql import EmptyScope, QueryError, Scope, enforce_namespace, render

NS = "shop"
SCOPE = Scope(NS, "web", "web-5d8f9c7b6", "5d8f9c7b6", ("web-5d8f9c7b6-abcde", "web-5d8f9c7b6-fghij"), 120)
RATIO = (
    'sum(rate(http_requests_total{namespace="{{namespace}}",pod=~"{{pods}}",code=~"5.."}[{{window}}]))'
    ' / sum(rate(http_requests_total{namespace="{{namespace}}",pod=~"{{pods}}"}[{{window}}]))'
)
no_surrogates = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)


def matcher_value(query: str, label: str) -> str:
    (sel,) = promql.selectors(query)
    (m,) = [m for m in sel.matchers.matchers if m.name == label]
    return m.value


def test_render_the_recommended_ratio() -> None:
    q = render(RATIO, SCOPE, {})
    assert q == (
        'sum(rate(http_requests_total{namespace="shop",pod=~"^(?:web-5d8f9c7b6-abcde|web-5d8f9c7b6-fghij)$",code=~"5.."}[120s]))'
        ' / sum(rate(http_requests_total{namespace="shop",pod=~"^(?:web-5d8f9c7b6-abcde|web-5d8f9c7b6-fghij)$"}[120s]))'
    )
    enforce_namespace(q, NS)


def test_scoping_placeholders_and_parameters() -> None:
    t = 'histogram_quantile({{q}}, sum by (le) (rate(h_bucket{namespace="{{ namespace }}",rs="{{replicaset}}",hash="{{pod_template_hash}}",app="{{workload}}"}[{{range}}])))'
    q = render(t, SCOPE, {"q": "0.99", "range": "5m"})
    assert 'rs="web-5d8f9c7b6",hash="5d8f9c7b6",app="web"' in q and q.startswith("histogram_quantile(0.99,")
    assert q.endswith("[5m])))")
    enforce_namespace(q, NS)


def test_pods_are_an_exact_alternation_of_escaped_names() -> None:
    regex = promql.pods_regex(("b.x", "a+1", "b.x"))
    assert regex == r"^(?:a\+1|b\.x)$"
    q = render('up{namespace="{{namespace}}",pod=~"{{pods}}"}', Scope(NS, "w", "r", "h", ("b.x", "a+1"), 60), {})
    assert matcher_value(q, "pod") == regex  # the string escapes are undone by the parser, the regex stays


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=5), st.text(max_size=20))
def test_pods_regex_matches_exactly_the_names(pods: list[str], probe: str) -> None:
    regex = re.compile(promql.pods_regex(tuple(pods)))
    for p in pods:
        assert regex.fullmatch(p)
    assert bool(regex.fullmatch(probe)) is (probe in pods)


def test_no_pod_yet_is_an_empty_scope_not_a_match_all() -> None:
    with pytest.raises(EmptyScope):
        render('up{namespace="{{namespace}}",pod=~"{{pods}}"}', Scope(NS, "w", "r", "h", (), 60), {})
    with pytest.raises(EmptyScope):
        promql.pods_regex(("",))
    # a template without {{pods}} renders without pods
    assert render('up{namespace="{{namespace}}"}', Scope(NS, "w", "r", "h", (), 60), {}) == 'up{namespace="shop"}'


@pytest.mark.parametrize("quote", ['"', "'"])
@given(value=no_surrogates)
def test_escaped_values_round_trip_through_the_parser(quote: str, value: str) -> None:
    q = f"up{{namespace={quote}{promql.escape_string(value, quote)}{quote}}}"
    assert matcher_value(q, "namespace") == value


def test_hostile_label_values_stay_inside_their_string() -> None:
    hostile = 'x"} or vector(1) or up{a="\\\n'
    scope = Scope(hostile, hostile, hostile, hostile, (hostile,), 60)
    q = render('sum(up{namespace="{{namespace}}",app="{{workload}}",pod=~"{{pods}}"})', scope, {})
    (sel,) = promql.selectors(q)
    values = {m.name: m.value for m in sel.matchers.matchers}
    assert values["namespace"] == hostile and values["app"] == hostile
    assert re.fullmatch(values["pod"], hostile)
    enforce_namespace(q, hostile)
    root = promql_parser.parse(q)  # one aggregation of one selector: nothing escaped the strings
    assert isinstance(root, promql_parser.AggregateExpr) and isinstance(root.expr, promql_parser.VectorSelector)


def test_surrogates_are_refused() -> None:
    with pytest.raises(QueryError):
        promql.escape_string("a\ud800")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("up{namespace={{namespace}}}", "inside a quoted string"),
        ('sum(up{namespace="x"}) > {{pods}}', "inside a quoted string"),
        ('up{namespace="{{namespace}}"} # {{workload}}', "inside a comment"),
        ("up{namespace=`{{namespace}}`}", "raw"),
        ('up{namespace="{{namespace}}"} > {{threshold}}', "unknown placeholder {{threshold}}"),
        ('up{namespace="{{ namespace }"}', "malformed placeholder"),
        ('up{namespace="{{namespace}}}', "unterminated"),
    ],
)
def test_template_mistakes(template: str, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)):
        render(template, SCOPE, {})


def test_placeholder_lexing_follows_promql_strings() -> None:
    parts = promql.parts('a{b="x\\"{{workload}}"} # c\n + \'{{pods}}\'')
    slots = [p for p in parts if isinstance(p, promql.Slot)]
    assert slots == [promql.Slot("workload", '"'), promql.Slot("pods", "'")]
    assert promql.placeholders(RATIO) == {"namespace", "pods", "window"}


def test_parameters_and_window_render_as_promql_numbers_and_durations() -> None:
    assert promql.number(0.05) == "0.05" and promql.number(1e-7) == "1e-07" and promql.number(3) == "3.0"
    assert promql.duration(300_000) == "300s" and promql.duration(1500) == "1500ms"
    for bad in (float("nan"), float("inf")):
        with pytest.raises(QueryError):
            promql.number(bad)
    with pytest.raises(QueryError):
        promql.duration(0)


SCOPED = [
    'up{namespace="shop"}',
    'sum(rate(x{namespace="shop"}[5m])) / sum(rate(x{namespace="shop"}[5m]))',
    'max_over_time(sum(rate(x{namespace="shop"}[1m]))[10m:1m])',
    'sum by (le) (x{namespace="shop", namespace=~".*"})',  # both matchers must hold: still only shop
    'topk(1, x{namespace="shop"}) or on() vector(0) * scalar(y{namespace="shop"})',
    'label_replace(x{namespace="shop"}, "namespace", "other", "", "")',
    'x{namespace="shop"} offset 1h',
    'count_values("v", x{namespace="shop"})',
    '-x{namespace="shop"} @ 1700000000',
    'absent(x{namespace="shop"})',
    '{__name__=~".+", namespace="shop"}',
    'x{"namespace"="shop"}',
]


@pytest.mark.parametrize("query", SCOPED)
def test_scoped_queries_are_accepted(query: str) -> None:
    enforce_namespace(query, NS)


UNSCOPED = [
    ("up", "has no namespace matcher"),
    ('{__name__=~".+"}', "has no namespace matcher"),
    ('up{namespace=~".*"}', "something other than"),
    ('up{namespace=~"shop"}', "something other than"),
    ('up{namespace!="kube-system"}', "something other than"),
    ('up{namespace="other"}', "something other than"),
    ('sum(rate(x{namespace="shop"}[5m])) / sum(rate(x[5m]))', "has no namespace matcher"),
    ('x{namespace="shop"} or vector(1) * up', "has no namespace matcher"),
    ('max_over_time(rate(x{pod="a"}[1m])[10m:1m])', "has no namespace matcher"),
    ('sum(x{namespace="shop"}) + max_over_time((sum(y))[5m:])', "has no namespace matcher"),
    ('histogram_quantile(0.9, sum by (le) (rate(h{namespace="shop"}[5m]))) > scalar(z)', "has no namespace matcher"),
    ('topk(scalar(k), x{namespace="shop"})', "has no namespace matcher"),
    ('x{namespace="shop"} * on(pod) group_left() kube_pod_owner{owner_name="a"}', "has no namespace matcher"),
    ('-(-(x{namespace="shop"} - abs(y)))', "has no namespace matcher"),
    ('up{namespace="shop" or namespace="other"}', "uses `or` inside braces"),
    ("vector(1)", "reads no series"),
    ("1", "reads no series"),
    ('up{namespace="shop"}[5m]', "range vector"),
    ('"text"', "string"),
    ("sum(", "does not parse"),
    ('up{namespace="shop"} )', "does not parse"),
]


@pytest.mark.parametrize(("query", "message"), UNSCOPED)
def test_unscoped_queries_are_refused(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)):
        enforce_namespace(query, NS)


def test_the_check_is_on_the_parse_not_on_the_text() -> None:
    # the namespace matcher appears in the text (a comment, a string) but on no selector
    for query in ('up # namespace="shop"\n', 'label_replace(up, "x", "namespace=\\"shop\\"", "", "")'):
        with pytest.raises(QueryError, match="has no namespace matcher"):
            enforce_namespace(query, NS)


def test_overlong_queries_are_refused() -> None:
    with pytest.raises(QueryError, match="more than"):
        enforce_namespace('up{namespace="shop"} + ' * 1000 + "1", NS)
    with pytest.raises(QueryError, match="more than"):
        render(
            'up{namespace="{{namespace}}",pod=~"{{pods}}"}',
            Scope(NS, "w", "r", "h", tuple(f"p{i:05d}" for i in range(2000)), 60),
            {},
        )


names = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30)


@given(names, names, names, st.lists(names, min_size=1, max_size=4), st.integers(1, 86400))
def test_any_scope_renders_a_query_scoped_to_its_namespace(
    ns: str, workload: str, rs: str, pods: list[str], window: int
) -> None:
    q = render(
        RATIO + ' + on() sum(x{namespace="{{namespace}}",app="{{workload}}",rs=\'{{replicaset}}\'})',
        Scope(ns, workload, rs, rs, tuple(pods), window),
        {},
    )
    enforce_namespace(q, ns)
    sels = promql.selectors(q)
    assert len(sels) == 3
    for sel in sels:
        values = {m.name: m.value for m in sel.matchers.matchers}
        assert values["namespace"] == ns
        if "pod" in values:
            assert all(re.fullmatch(values["pod"], p) for p in pods)
    (named,) = [s for s in sels if s.name == "x"]
    assert {m.name: m.value for m in named.matchers.matchers} == {"namespace": ns, "app": workload, "rs": rs}
