"""A check's PromQL: the template rendered for one revision, and the rule that every query reads
only the workload's namespace. Pure.

Placeholders are `{{name}}`. The scoping ones are filled in by the operator:

- `{{namespace}}`, `{{workload}}`, `{{replicaset}}`, `{{pod_template_hash}}`: names, only inside a
  quoted string (`namespace="{{namespace}}"`), escaped for that string;
- `{{pods}}`: an exact regex of the revision's pod names, `^(?:name-1|name-2)$`, each name
  regex-escaped (RE2's metacharacters, as Go's regexp.QuoteMeta), then escaped for the string:
  write `pod=~"{{pods}}"`. A revision with no pod yet cannot be rendered (`EmptyScope`): an empty
  alternation would match the series that have no `pod` label at all;
- `{{window}}`: a duration (`[{{window}}]`), outside strings.

The template's parameters (thresholds, quantiles, durations) are numbers or durations, never text:
a tenant can set them by annotation, and a number cannot carry PromQL. They may stand outside or
inside strings. A placeholder in a comment or a raw (backquoted) string is refused (the second
cannot be escaped).

Scoping is enforced on the PARSED query (promql-parser, a Rust port of the Prometheus 2.45 parser):
every vector selector, wherever it is nested (functions, aggregations, binary operations,
subqueries), must carry `namespace="<the namespace>"` with the equality operator. Regex or negative
matchers on namespace, `or` inside braces and queries that read no series at all are refused; so is
anything the parser cannot read.
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import promql_parser as pp

STRING_PLACEHOLDERS = ("namespace", "workload", "replicaset", "pod_template_hash", "pods")
SCOPING = (*STRING_PLACEHOLDERS, "window")
MAX_QUERY = 8000  # characters of a rendered query (templates are the platform's; this bounds a mistake)
NAMESPACE = "namespace"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_REGEX_META = frozenset("\\.+*?()|[]{}^$")  # Go's regexp.QuoteMeta
_SHOWN = 160  # characters of a selector quoted in an error


class QueryError(ValueError):
    """The template or the rendered query is not accepted; the message says what to write instead."""


class EmptyScope(QueryError):
    """The revision has no pod to scope `{{pods}}` to yet: nothing to evaluate (no data)."""


@dataclass(frozen=True)
class Scope:
    """The revision a query is about."""

    namespace: str
    workload: str
    replicaset: str
    pod_template_hash: str
    pods: tuple[str, ...]
    window_seconds: int


@dataclass(frozen=True)
class Slot:
    name: str
    quote: str  # the string the placeholder stands in: '"', "'", or "" (outside strings)


def parts(template: str) -> list[str | Slot]:
    """The template split into literal text and placeholders, each with the quoting it stands in.
    The lexing follows PromQL's: strings in "..." and '...' with backslash escapes, raw strings in
    backquotes, comments from # to the end of the line."""
    out: list[str | Slot] = []
    buf: list[str] = []
    state = ""  # "", '"', "'", "`", "#"
    i, n = 0, len(template)
    while i < n:
        if template.startswith("{{", i):
            m = _PLACEHOLDER.match(template, i)
            if m is None:
                raise QueryError(f"malformed placeholder at character {i}: write {{{{name}}}}, e.g. {{{{namespace}}}}")
            if state == "#":
                raise QueryError(
                    f"placeholder {m.group(0)} is inside a comment: remove it or move it out of the comment"
                )
            if state == "`":
                raise QueryError(
                    f"placeholder {m.group(0)} is inside a `raw` string, which cannot be escaped: use double quotes"
                )
            if buf:
                out.append("".join(buf))
                buf = []
            out.append(Slot(m.group(1), state))
            i = m.end()
            continue
        c = template[i]
        buf.append(c)
        i += 1
        if state == "":
            if c in "\"'`#":
                state = c
        elif state == "#":
            if c == "\n":
                state = ""
        elif state == "`":
            if c == "`":
                state = ""
        elif c == "\\":
            if i < n:
                buf.append(template[i])
                i += 1
        elif c == state:
            state = ""
    if state in "\"'`" and state:
        raise QueryError(f"unterminated {state} string: close it")
    if buf:
        out.append("".join(buf))
    return out


def placeholders(template: str) -> set[str]:
    return {p.name for p in parts(template) if isinstance(p, Slot)}


def escape_string(value: str, quote: str = '"') -> str:
    """The body of a PromQL string literal in `quote` whose value is exactly `value` (Go's escapes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise QueryError("a value is not valid text (unpaired surrogate)") from e
    out: list[str] = []
    for ch in value:
        if ch in ("\\", quote):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def quote_meta(name: str) -> str:
    """RE2's metacharacters escaped (Go's regexp.QuoteMeta): the regex matches exactly `name`."""
    return "".join("\\" + ch if ch in _REGEX_META else ch for ch in name)


def pods_regex(pods: tuple[str, ...]) -> str:
    names = sorted({p for p in pods if p})
    if not names or len(names) != len(set(pods)):
        raise EmptyScope("the revision has no pod yet (or a pod without a name): nothing to evaluate")
    return "^(?:" + "|".join(quote_meta(p) for p in names) + ")$"


def duration(ms: int) -> str:
    """A PromQL duration for a whole number of milliseconds (at least 1 ms)."""
    if ms < 1:
        raise QueryError(f"a duration must be at least 1ms, not {ms}ms")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def number(value: float) -> str:
    """A finite float as PromQL reads it back exactly."""
    if value != value or value in (float("inf"), float("-inf")):
        raise QueryError(f"{value} is not a finite number")
    return repr(float(value))


def render(template: str, scope: Scope, values: Mapping[str, str]) -> str:
    """The query for this revision. `values` are the template's parameters, already rendered as
    PromQL numbers or durations (templates.Check.rendered). Raises QueryError (EmptyScope when the
    revision has no pod yet and the template uses {{pods}})."""
    strings = {
        "namespace": scope.namespace,
        "workload": scope.workload,
        "replicaset": scope.replicaset,
        "pod_template_hash": scope.pod_template_hash,
    }
    out: list[str] = []
    for part in parts(template):
        if isinstance(part, str):
            out.append(part)
            continue
        name, quote = part.name, part.quote
        if name in STRING_PLACEHOLDERS:
            if not quote:
                raise QueryError(f"placeholder {{{{{name}}}}} must be inside a quoted string, e.g. {_example(name)}")
            text = pods_regex(scope.pods) if name == "pods" else strings[name]
            out.append(escape_string(text, quote))
        elif name == "window":
            out.append(
                escape_string(duration(scope.window_seconds * 1000), quote)
                if quote
                else duration(scope.window_seconds * 1000)
            )
        elif name in values:
            out.append(escape_string(values[name], quote) if quote else values[name])
        else:
            known = ", ".join(sorted({*SCOPING, *values}))
            raise QueryError(f"unknown placeholder {{{{{name}}}}}: the known ones are {known}")
    query = "".join(out)
    if len(query) > MAX_QUERY:
        raise QueryError(f"the rendered query has {len(query)} characters, more than {MAX_QUERY}")
    return query


def _example(name: str) -> str:
    if name == "pods":
        return 'pod=~"{{pods}}"'
    if name == "namespace":
        return 'namespace="{{namespace}}"'
    return f'label="{{{{{name}}}}}"'


def _children(expr: pp.Expr) -> Iterator[object]:
    if isinstance(expr, pp.MatrixSelector):
        yield expr.vector_selector
    elif isinstance(expr, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        yield expr.expr
    elif isinstance(expr, pp.BinaryExpr):
        yield expr.lhs
        yield expr.rhs
    elif isinstance(expr, pp.AggregateExpr):
        yield expr.expr
        if expr.param is not None:
            yield expr.param
    elif isinstance(expr, pp.Call):
        yield from expr.args
    elif not isinstance(expr, pp.VectorSelector | pp.NumberLiteral | pp.StringLiteral):
        raise QueryError(f"unsupported expression {type(expr).__name__}: the query cannot be checked")


def selectors(query: str) -> list[pp.VectorSelector]:
    """Every vector selector in the query, wherever it is nested. Raises QueryError when the query
    does not parse."""
    if len(query) > MAX_QUERY:
        raise QueryError(f"the query has {len(query)} characters, more than {MAX_QUERY}")
    try:
        root = pp.parse(query)
    except ValueError as e:
        raise QueryError(f"the query does not parse: {e}") from e
    if isinstance(root, pp.MatrixSelector | pp.SubqueryExpr | pp.StringLiteral):
        raise QueryError(
            f"the query returns a {'string' if isinstance(root, pp.StringLiteral) else 'range vector'}: "
            "it must return one number (a one-element instant vector or a scalar), e.g. sum(rate(x[5m]))"
        )
    found: list[pp.VectorSelector] = []
    stack: list[object] = [root]
    while stack:
        node = stack.pop()
        if not isinstance(node, pp.Expr):
            raise QueryError(f"unsupported element {type(node).__name__}: the query cannot be checked")
        if isinstance(node, pp.VectorSelector):
            found.append(node)
        stack.extend(_children(node))
    return found


def enforce_namespace(query: str, namespace: str) -> None:
    """Raise QueryError unless every vector selector of the query matches namespace="<namespace>"
    exactly, and the query reads at least one series."""
    found = selectors(query)
    if not found:
        raise QueryError(
            "the query reads no series: it must select metrics of the workload's namespace, "
            'e.g. sum(rate(http_requests_total{namespace="{{namespace}}",pod=~"{{pods}}"}[{{window}}]))'
        )
    for sel in found:
        shown = _shown(sel)
        if sel.matchers.or_matchers:
            raise QueryError(
                f"selector {shown} uses `or` inside braces, which is not accepted: "
                'write one selector per alternative, each with namespace="{{namespace}}", joined by `or`'
            )
        mine = [m for m in sel.matchers.matchers if m.name == NAMESPACE]
        if any(m.op == pp.MatchOp.Equal and m.value == namespace for m in mine):
            continue
        if mine:
            raise QueryError(
                f'selector {shown} matches the namespace with something other than namespace="{{{{namespace}}}}" '
                '(regex, negative or another name are not accepted): write namespace="{{namespace}}"'
            )
        raise QueryError(f'selector {shown} has no namespace matcher: add namespace="{{{{namespace}}}}" to it')


def _shown(sel: pp.VectorSelector) -> str:
    text = str(sel)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
