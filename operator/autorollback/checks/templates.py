"""The platform's named metric checks (templates), and which of them a workload uses. Pure.

The catalog comes from the operator's configuration (a ConfigMap rendered from the chart's values):
check name -> a mapping, or its JSON text (a ConfigMap's values are strings):

    error-ratio:
      query: >-
        sum(rate(http_requests_total{namespace="{{namespace}}",pod=~"{{pods}}",code=~"5.."}[{{window}}]))
        / sum(rate(http_requests_total{namespace="{{namespace}}",pod=~"{{pods}}"}[{{window}}]))
      failIf: result > threshold          # result (>|>=|<|<=) (number | parameter)
      params: {threshold: 0.05}           # or {threshold: {default: 0.05, min: 0, max: 0.5}}
      intervalSeconds: 30                 # between evaluations (default 30)
      failures: 3                         # consecutive failed evaluations that roll back (default 3)
      window: 5m                          # the longest {{window}} (default 5m)
      onNoData: ignore                    # ignore (default) | fail | reset
      onError: ignore                     # ignore (default) | fail | reset
      minimum:                            # optional traffic guard: below it, the evaluation is no data
        query: sum(increase(http_requests_total{namespace="{{namespace}}",pod=~"{{pods}}"}[{{window}}]))
        atLeast: min_requests             # number or parameter
    p99-latency-vs-previous:
      query: histogram_quantile(0.99, sum by (le) (rate(..{namespace="{{namespace}}",pod=~"{{pods}}"}[{{window}}])))
      failIf: result > baseline * factor  # relative mode: the same query on the previous revision's pods

Relative mode (`baseline` in failIf) compares the new pods with the previous revision's: it fails
only if the new value is worse by the margin (`result > baseline + m`, `result > baseline * f` with
f >= 1; `result < baseline - m`, `result < baseline * f` with f <= 1). Its query must be scoped to
the revision ({{pods}}, {{replicaset}} or {{pod_template_hash}}), or both sides would be the same.

Parameters are numbers or durations (Prometheus syntax, 5m, 1h30m), never text: a workload can
override them by annotation and a number cannot carry PromQL.

A workload selects checks and tunes them by annotations:

    autorollback.io/checks: error-ratio,p99-latency
    autorollback.io/check.error-ratio.threshold: "0.02"
    autorollback.io/bake-seconds: "600"      # how long checks go on after the rollout completed

In a namespace the platform lists in checks.promqlNamespaces (and only there), a workload may also
define a check of its own, selected like any other, with the same validation as a catalog entry
(placeholders, failIf, limits; every selector must carry namespace="{{namespace}}"):

    autorollback.io/checks: error-ratio,queue-depth
    autorollback.io/check.queue-depth.query: max(queue_depth{namespace="{{namespace}}",pod=~"{{pods}}"})
    autorollback.io/check.queue-depth.fail-if: result > 100
    # optional: interval-seconds, failures, window, on-no-data, on-error

Its name must not be one of the platform's checks (a template is never replaced by annotation), and
it has no parameters: the numbers are written in fail-if.

Validation is strict. A catalog entry that is wrong is left out with an error that says what is
wrong and what to write (the caller decides whether that stops the operator). A workload's
annotation that is wrong is a Problem: an unknown check or a check with an invalid parameter is not
run (running it with another threshold than the one asked for could roll back a release its owner
meant to keep); an invalid bake-seconds keeps its default.
"""

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from autorollback.checks import promql
from autorollback.checks.outcome import Limit
from autorollback.checks.streak import MAX_CHECKS, Policy
from autorollback.config import PREFIX, quote

CHECKS = PREFIX + "checks"
BAKE_SECONDS = PREFIX + "bake-seconds"
CHECK = PREFIX + "check."  # autorollback.io/check.<check name>.<parameter>
BAKE_DEFAULT, MAX_BAKE = 600, 86400
INTERVAL, MIN_INTERVAL, MAX_INTERVAL = 30, 5, 3600
FAILURES, MAX_FAILURES = 3, 100
WINDOW_MS = 300_000
MAX_WINDOW_MS = 86_400_000
MAX_PARAMS = 16
MAX_KEY_NAME = 63  # the name part of an annotation key (after the prefix's "/")

NAME = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,38}[a-z0-9])?")
PARAM = re.compile(r"[a-z][a-z0-9_]{0,30}")
NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
DURATION = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?"
)
_UNITS_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
RESERVED = frozenset({*promql.SCOPING, "result", "baseline"})
KEYS = ("query", "failIf", "params", "intervalSeconds", "failures", "window", "onNoData", "onError", "minimum")
_CONDITION = re.compile(
    r"\s*result\s*(>=|<=|>|<)\s*(?:(baseline)\s*(?:([-+*])\s*([^\s]+))?|([^\s]+))\s*",
)
REVISION_SCOPED = frozenset({"pods", "replicaset", "pod_template_hash"})
_SAMPLE = promql.Scope("sample-namespace", "sample-workload", "sample-workload-5d8f9c7b6", "5d8f9c7b6",
                       ("sample-workload-5d8f9c7b6-abcde",), 300)  # fmt: skip


# a check of the workload's own: annotation key (autorollback.io/check.<name>.<key>) -> template key
OWN_KEYS = {"query": "query", "fail-if": "failIf", "interval-seconds": "intervalSeconds", "failures": "failures",
            "window": "window", "on-no-data": "onNoData", "on-error": "onError"}  # fmt: skip
MAX_OWN_QUERY, MAX_OWN_VALUE = 2000, 100  # characters of a workload's own query, and of its other values


class CatalogError(ValueError):
    """The platform's check catalog has errors (each says what is wrong and what to write)."""

    def __init__(self, errors: tuple[str, ...]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Param:
    name: str
    kind: Literal["number", "duration"]
    default: float  # a number, or milliseconds for a duration
    low: float | None = None
    high: float | None = None

    def parse(self, text: str) -> float:
        """The value of `text` for this parameter; ValueError says what to write."""
        value = parse_duration(text) if self.kind == "duration" else parse_number(text)
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ValueError(f"it must be {self.accepted()}")
        return value

    def accepted(self) -> str:
        what = "a duration like 5m" if self.kind == "duration" else "a number like 0.05"
        if self.low is not None and self.high is not None:
            return f"{what}, from {self.show(self.low)} to {self.show(self.high)}"
        if self.low is not None:
            return f"{what}, at least {self.show(self.low)}"
        if self.high is not None:
            return f"{what}, at most {self.show(self.high)}"
        return what

    def show(self, value: float) -> str:
        return promql.duration(int(value)) if self.kind == "duration" else f"{value:g}"

    def rendered(self, value: float) -> str:
        return promql.duration(int(value)) if self.kind == "duration" else promql.number(value)


@dataclass(frozen=True)
class Operand:
    """A number written in the template, or a parameter's name."""

    literal: float | None = None
    param: str = ""

    def value(self, values: Mapping[str, float]) -> float:
        return self.literal if self.literal is not None else values[self.param]


@dataclass(frozen=True)
class Condition:
    op: str
    operand: Operand
    relative: str = ""  # "", "+", "-", "*" (relative mode: the operand applies to the baseline)

    def limit(self, values: Mapping[str, float]) -> Limit:
        return Limit(self.op, self.operand.value(values), self.relative)


@dataclass(frozen=True)
class Guard:
    query: str
    at_least: Operand


@dataclass(frozen=True)
class Template:
    name: str
    query: str
    fail_if: Condition
    params: Mapping[str, Param]
    interval: int = INTERVAL
    failures: int = FAILURES
    window_ms: int = WINDOW_MS
    on_no_data: Policy = Policy.IGNORE
    on_error: Policy = Policy.IGNORE
    guard: Guard | None = None
    own: bool = False  # the workload's own check (its annotations), not the platform's catalog

    @property
    def relative(self) -> bool:
        return bool(self.fail_if.relative)

    def defaults(self) -> dict[str, float]:
        return {n: p.default for n, p in self.params.items()}


@dataclass(frozen=True)
class Catalog:
    templates: Mapping[str, Template]
    errors: tuple[str, ...] = ()

    def strict(self) -> "Catalog":
        """This catalog, or CatalogError if any entry was refused."""
        if self.errors:
            raise CatalogError(self.errors)
        return self


def parse_number(text: str) -> float:
    if not isinstance(text, str) or not NUMBER.fullmatch(text.strip()):
        raise ValueError("it must be a plain number like 0.05 (no expression, no unit)")
    value = float(text.strip())
    if not math.isfinite(value):
        raise ValueError("it must be a finite number")
    return value


def parse_duration(text: str) -> float:
    """Milliseconds of a Prometheus duration (units in order: y w d h m s ms, each once)."""
    m = DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None or not text.strip():
        raise ValueError("it must be a duration like 30s, 5m or 1h30m")
    ms = sum(int(g) * unit for g, unit in zip(m.groups(), _UNITS_MS, strict=True) if g is not None)
    if not 1 <= ms <= MAX_WINDOW_MS * 30:
        raise ValueError("it must be a duration from 1ms to 30d")
    return float(ms)


def parse_catalog(data: Mapping[str, object] | None) -> Catalog:
    """Every valid template of the catalog, and an error for each invalid one."""
    templates: dict[str, Template] = {}
    errors: list[str] = []
    for name, spec in sorted((data or {}).items(), key=lambda kv: str(kv[0])):
        try:
            templates[name] = parse_template(name, spec)
        except ValueError as e:
            errors.append(f"check {quote(str(name), 60)}: {e}")
    return Catalog(templates, tuple(errors))


def parse_template(name: object, spec: object) -> Template:
    """One catalog entry; ValueError says what is wrong and what to write instead."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError("the name must be lowercase letters, digits and '-', 1 to 40 characters, e.g. error-ratio")
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError as e:
            raise ValueError(
                f'the value is not a JSON object ({e.__class__.__name__}): write {{"query": ..., "failIf": ...}}'
            ) from e
    if not isinstance(spec, Mapping):
        raise ValueError('the value must be a mapping with "query" and "failIf"')
    unknown = sorted(str(k) for k in spec if k not in KEYS)
    if unknown:
        raise ValueError(
            f"unknown keys {', '.join(quote(k, 30) for k in unknown)}: the accepted keys are {', '.join(KEYS)}"
        )
    params = _params(name, spec.get("params"))
    query = _text(spec.get("query"), "query")
    condition = _condition(spec.get("failIf"), params)
    interval = _whole(spec.get("intervalSeconds", INTERVAL), "intervalSeconds", MIN_INTERVAL, MAX_INTERVAL)
    failures = _whole(spec.get("failures", FAILURES), "failures", 1, MAX_FAILURES)
    window = spec.get("window", "5m")
    try:
        window_ms = int(parse_duration(window)) if isinstance(window, str) else -1
    except ValueError:
        window_ms = -1
    if not 1000 <= window_ms <= MAX_WINDOW_MS or window_ms % 1000:
        raise ValueError(f"window {quote(str(window), 30)} is invalid: write whole seconds from 1s to 1d, e.g. 5m")
    on_no_data = _policy(spec.get("onNoData", "ignore"), "onNoData")
    on_error = _policy(spec.get("onError", "ignore"), "onError")
    guard = _guard(spec.get("minimum"), params)
    used = _check_query(query, params, "query")
    if condition.relative and not used & REVISION_SCOPED:
        raise ValueError(
            "a relative check (baseline in failIf) must scope its query to the revision: "
            'use pod=~"{{pods}}" (or {{replicaset}} / {{pod_template_hash}}), or the previous revision reads the same series'
        )
    if guard is not None:
        used |= _check_query(guard.query, params, "minimum.query")
    unused = sorted(set(params) - used - {condition.operand.param} - ({guard.at_least.param} if guard else set()))
    if unused:
        raise ValueError(
            f"parameters {', '.join(unused)} are declared but not used: remove them or use {{{{{unused[0]}}}}}"
        )
    template = Template(name, query, condition, params, interval, failures, window_ms, on_no_data, on_error, guard)
    problem = _limit_problem(condition, template.defaults())
    if problem:
        raise ValueError(f"with the default parameters, {problem}")
    return template


def _text(value: object, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} is missing or empty: write a PromQL query")
    return value


def _whole(value: object, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{key} must be a whole number from {low} to {high}")
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]{1,7}", text) or not low <= int(text) <= high:
        raise ValueError(f"{key} {quote(text, 30)} is invalid: write a whole number from {low} to {high}")
    return int(text)


def _policy(value: object, key: str) -> Policy:
    accepted = [p.value for p in Policy]
    if not isinstance(value, str) or value.strip().lower() not in accepted:
        raise ValueError(f"{key} {quote(str(value), 30)} is invalid: write {' or '.join(accepted)}")
    return Policy(value.strip().lower())


def _params(check: str, raw: object) -> dict[str, Param]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError("params must be a mapping of parameter name to default, e.g. {threshold: 0.05}")
    if len(raw) > MAX_PARAMS:
        raise ValueError(f"at most {MAX_PARAMS} parameters")
    out: dict[str, Param] = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not PARAM.fullmatch(name) or name in RESERVED:
            raise ValueError(
                f"parameter {quote(str(name), 30)}: a name is a lowercase letter then letters, digits or '_' "
                f"(at most 31), and not one of {', '.join(sorted(RESERVED))}"
            )
        key = f"check.{check}.{name}"
        if len(key) > MAX_KEY_NAME:
            raise ValueError(
                f"parameter {name}: the annotation {PREFIX}{key} would be longer than Kubernetes allows; shorten the names"
            )
        out[name] = _param(name, spec)
    return out


def _param(name: str, spec: object) -> Param:
    bounds: Mapping[object, object] = {}
    if isinstance(spec, Mapping):
        extra = sorted(str(k) for k in spec if k not in ("default", "min", "max"))
        if extra or "default" not in spec:
            raise ValueError(f"parameter {name}: write {{default: ..., min: ..., max: ...}} (min and max optional)")
        bounds, spec = spec, spec["default"]
    if isinstance(spec, bool) or not isinstance(spec, int | float | str):
        raise ValueError(f"parameter {name}: the default must be a number like 0.05 or a duration like 5m")
    text = str(spec).strip()
    kind: Literal["number", "duration"] = "number" if NUMBER.fullmatch(text) else "duration"
    try:
        default = parse_number(text) if kind == "number" else parse_duration(text)
        low = _bound(bounds.get("min"), kind)
        high = _bound(bounds.get("max"), kind)
    except ValueError as e:
        raise ValueError(f"parameter {name}: {e}") from e
    param = Param(name, kind, default, low, high)
    if (
        (low is not None and default < low)
        or (high is not None and default > high)
        or (low is not None and high is not None and low > high)
    ):
        raise ValueError(f"parameter {name}: the default must lie within min and max")
    return param


def _bound(value: object, kind: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("min and max must be numbers or durations like the default")
    return parse_number(str(value)) if kind == "number" else parse_duration(str(value))


def _operand(text: str, params: Mapping[str, Param], where: str) -> Operand:
    if NUMBER.fullmatch(text):
        return Operand(literal=parse_number(text))
    if text in params:
        if params[text].kind != "number":
            raise ValueError(f"{where}: parameter {text} is a duration, a number is needed")
        return Operand(param=text)
    raise ValueError(
        f"{where}: {quote(text, 30)} is neither a number nor a declared parameter (declare it under params)"
    )


def _condition(raw: object, params: Mapping[str, Param]) -> Condition:
    example = 'write "result > threshold", "result < 0.99" or "result > baseline * factor"'
    if not isinstance(raw, str):
        raise ValueError(f"failIf is missing: {example}")
    m = _CONDITION.fullmatch(raw)
    if m is None:
        raise ValueError(f"failIf {quote(raw, 60)} is not a condition: {example}")
    op, baseline, sign, amount, absolute = m.groups()
    if baseline is None:
        return Condition(op, _operand(absolute, params, "failIf"))
    if sign is None:
        return Condition(op, Operand(literal=0.0), "+" if op in (">", ">=") else "-")
    if (op in (">", ">=") and sign == "-") or (op in ("<", "<=") and sign == "+"):
        better = "+" if op in (">", ">=") else "-"
        raise ValueError(
            f"failIf {quote(raw, 60)} would fail a revision no worse than the previous one: write baseline {better} margin"
        )
    return Condition(op, _operand(amount, params, "failIf"), sign)


def _limit_problem(condition: Condition, values: Mapping[str, float]) -> str:
    """Why these values make a relative condition fail a revision that is no worse; "" if they do not."""
    if not condition.relative:
        return ""
    amount = condition.operand.value(values)
    if condition.relative in ("+", "-") and amount < 0:
        return f"the margin must be 0 or more, not {amount:g}"
    if condition.relative == "*" and condition.op in (">", ">=") and amount < 1:
        return f"the factor of 'result {condition.op} baseline * factor' must be 1 or more, not {amount:g}"
    if condition.relative == "*" and condition.op in ("<", "<=") and not 0 <= amount <= 1:
        return f"the factor of 'result {condition.op} baseline * factor' must be from 0 to 1, not {amount:g}"
    return ""


def _guard(raw: object, params: Mapping[str, Param]) -> Guard | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) != {"query", "atLeast"}:
        raise ValueError("minimum must be {query: <PromQL of the traffic>, atLeast: <number or parameter>}")
    at_least = raw["atLeast"]
    if isinstance(at_least, bool) or not isinstance(at_least, int | float | str):
        raise ValueError("minimum.atLeast must be a number or a parameter's name")
    return Guard(_text(raw["query"], "minimum.query"), _operand(str(at_least).strip(), params, "minimum.atLeast"))


def _check_query(query: str, params: Mapping[str, Param], key: str) -> set[str]:
    """The placeholders the query uses; ValueError unless it renders and every selector is scoped."""
    try:
        used = promql.placeholders(query)
        unknown = sorted(used - set(promql.SCOPING) - set(params))
        if unknown:
            raise promql.QueryError(
                f"unknown placeholder {{{{{unknown[0]}}}}}: declare it under params, or use one of {', '.join(promql.SCOPING)}"
            )
        rendered = promql.render(query, _SAMPLE, {n: p.rendered(p.default) for n, p in params.items()})
        promql.enforce_namespace(rendered, _SAMPLE.namespace)
    except promql.QueryError as e:
        raise ValueError(f"{key}: {e}") from e
    return used


@dataclass(frozen=True)
class Check:
    """A template as one workload uses it: its parameters' values (the defaults, then the annotations)."""

    template: Template
    values: Mapping[str, float]

    @property
    def name(self) -> str:
        return self.template.name

    @property
    def limit(self) -> Limit:
        return self.template.fail_if.limit(self.values)

    @property
    def minimum(self) -> float | None:
        guard = self.template.guard
        return guard.at_least.value(self.values) if guard is not None else None

    def rendered(self) -> dict[str, str]:
        """The parameters as PromQL text, for promql.render."""
        return {n: p.rendered(self.values[n]) for n, p in self.template.params.items()}

    def queries(self, scope: promql.Scope) -> tuple[str, str | None]:
        """The check's query and its guard's, for this revision, each checked for the namespace
        (promql.QueryError; EmptyScope when the revision has no pod yet: no data)."""
        values = self.rendered()
        query = promql.render(self.template.query, scope, values)
        promql.enforce_namespace(query, scope.namespace)
        guard = None
        if self.template.guard is not None:
            guard = promql.render(self.template.guard.query, scope, values)
            promql.enforce_namespace(guard, scope.namespace)
        return query, guard


@dataclass(frozen=True)
class Problem:
    key: str
    value: str
    message: str  # what is wrong and what to write
    consequence: str

    def text(self) -> str:
        return f"annotation {self.key}={quote(self.value)} is invalid: {self.message}; {self.consequence}"


@dataclass(frozen=True)
class Selection:
    checks: tuple[Check, ...] = ()
    bake_seconds: int = BAKE_DEFAULT
    problems: tuple[Problem, ...] = ()
    alerts: tuple[str, ...] = ()  # alert names that must not fire (checks.alerts.select)


def select(
    annotations: Mapping[str, str] | None,
    catalog: Catalog,
    namespace: str = "",
    promql_namespaces: frozenset[str] = frozenset(),
) -> Selection:
    """The checks a workload's annotations select, with their parameters, and its bake time: the
    platform's templates, and in a namespace of `promql_namespaces` the workload's own checks."""
    annotations = annotations or {}
    problems: list[Problem] = []
    bake = _bake_seconds(annotations.get(BAKE_SECONDS), problems)
    own = _own_keys(annotations, catalog)
    names: list[str] = []
    raw = annotations.get(CHECKS)
    if raw is not None:
        for item in raw.split(","):
            name = item.strip().lower()
            if not name or name in names:
                continue
            if name not in catalog.templates and name not in own:
                known = ", ".join(sorted(catalog.templates)) or "none (the operator has no check configured)"
                hint = (
                    f", or define your own with {CHECK}<check>.query and .fail-if"
                    if namespace in promql_namespaces
                    else ""
                )
                problems.append(
                    Problem(
                        CHECKS,
                        raw,
                        f"there is no check {quote(item.strip(), 40)}; the checks are: {known}{hint}",
                        "that name is ignored",
                    )
                )
                continue
            names.append(name)
        if len(names) > MAX_CHECKS:
            problems.append(Problem(CHECKS, raw, f"at most {MAX_CHECKS} checks", f"only the first {MAX_CHECKS} run"))
            names = names[:MAX_CHECKS]
    mine = {
        n: t for n, keys in sorted(own.items()) if (t := _own(n, keys, names, namespace, promql_namespaces, problems))
    }
    overrides: dict[str, dict[str, tuple[str, str]]] = {}
    for key, value in annotations.items():
        if not key.startswith(CHECK):
            continue
        check, dot, param = key[len(CHECK) :].partition(".")
        if check in own:
            continue  # the workload's own check: its keys were read above
        template = catalog.templates.get(check)
        if template is not None and dot and param in OWN_KEYS and param not in template.params:
            problems.append(
                Problem(
                    key,
                    value,
                    f"{check} is the platform's check: a check of your own must take another name "
                    "(the platform's templates are not replaced by annotation)",
                    "the value is ignored",
                )
            )
            continue
        if not dot or template is None or check not in names:
            why = (
                f"check {quote(check, 40)} is not selected in {CHECKS}" if dot else f"write {CHECK}<check>.<parameter>"
            )
            problems.append(Problem(key, value, why, "the value is ignored"))
            continue
        if param not in template.params:
            accepted = ", ".join(sorted(template.params)) or "none"
            problems.append(
                Problem(
                    key,
                    value,
                    f"check {check} has no parameter {quote(param, 30)} (its parameters: {accepted})",
                    "the value is ignored",
                )
            )
            continue
        overrides.setdefault(check, {})[param] = (key, value)
    checks: list[Check] = []
    for name in names:
        if name in own:
            if name in mine:
                checks.append(Check(mine[name], {}))
            continue
        template = catalog.templates[name]
        values = template.defaults()
        ok = True
        for param, (key, text) in sorted(overrides.get(name, {}).items()):
            try:
                values[param] = template.params[param].parse(text)
            except ValueError as e:
                problems.append(Problem(key, text, str(e), f"check {name} is not run"))
                ok = False
        problem = _limit_problem(template.fail_if, values) if ok else ""
        if problem:
            key = f"{CHECK}{name}.{template.fail_if.operand.param}"
            problems.append(Problem(key, annotations.get(key, ""), problem, f"check {name} is not run"))
            ok = False
        if ok:
            checks.append(Check(template, values))
    return Selection(tuple(checks), bake, tuple(problems))


def _own_keys(annotations: Mapping[str, str], catalog: Catalog) -> dict[str, dict[str, tuple[str, str]]]:
    """The workload's own checks: check name -> its annotations (key -> (annotation key, value)),
    for every name that is not the platform's and has a key of OWN_KEYS."""
    own: dict[str, dict[str, tuple[str, str]]] = {}
    for key in annotations:
        check, dot, param = key[len(CHECK) :].partition(".") if key.startswith(CHECK) else ("", "", "")
        if dot and check not in catalog.templates and param in OWN_KEYS:
            own.setdefault(check, {})
    for key, value in annotations.items():
        check, dot, param = key[len(CHECK) :].partition(".") if key.startswith(CHECK) else ("", "", "")
        if check in own:
            own[check][param] = (key, value)
    return own


def _own(
    name: str,
    keys: Mapping[str, tuple[str, str]],
    names: list[str],
    namespace: str,
    allowed: frozenset[str],
    problems: list[Problem],
) -> Template | None:
    """The workload's own check `name` as a template, or None with a Problem saying why it is not run."""
    first = keys.get("query") or keys[min(keys)]
    consequence = f"check {name} is not run"
    if name not in names:
        problems.append(Problem(*first, f"check {quote(name, 40)} is not selected in {CHECKS}", consequence))
        return None
    if namespace not in allowed:
        problems.append(
            Problem(
                *first,
                f"namespace {quote(namespace, 63)} may not define checks of its own (PromQL): the platform must "
                "list it in checks.promqlNamespaces (flag --checks-promql-namespaces), or use the platform's checks",
                consequence,
            )
        )
        return None
    spec: dict[str, object] = {}
    for param, (key, value) in sorted(keys.items()):
        if param not in OWN_KEYS:
            accepted = ", ".join(OWN_KEYS)
            problems.append(
                Problem(
                    key, value, f"a check of your own has no key {quote(param, 30)} (its keys: {accepted})", consequence
                )
            )
            return None
        limit = MAX_OWN_QUERY if param == "query" else MAX_OWN_VALUE
        if len(value) > limit:
            problems.append(Problem(key, value, f"at most {limit} characters", consequence))
            return None
        spec[OWN_KEYS[param]] = value
    try:
        return replace(parse_template(name, spec), own=True)
    except ValueError as e:
        problems.append(Problem(*first, str(e), consequence))
        return None


def _bake_seconds(raw: str | None, problems: list[Problem]) -> int:
    if raw is None:
        return BAKE_DEFAULT
    text = raw.strip().removesuffix("s")
    if re.fullmatch(r"[0-9]{1,6}", text) and int(text) <= MAX_BAKE:
        return int(text)
    problems.append(
        Problem(
            BAKE_SECONDS,
            raw,
            f"write a whole number of seconds from 0 to {MAX_BAKE}",
            f"the default ({BAKE_DEFAULT}) is used",
        )
    )
    return BAKE_DEFAULT
