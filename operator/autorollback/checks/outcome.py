"""What one evaluation of a check says: pass, fail, no data or error. Pure.

`read` turns a Prometheus instant-query response (the JSON of /api/v1/query, or the HTTP status and
body with `read_body`) into a Reading: one finite number with the evaluation time Prometheus
reported, no data, or an error. `classify` compares it with the check's limit:

- an empty result, NaN or ±Inf is no data (0/0 when there is no traffic; a histogram quantile with
  nothing observed); so is a traffic guard below its minimum, and in relative mode a previous
  revision without a number;
- more than one series is an error (the query must aggregate): its message names the label names
  only, never the series' label values; so is an error status, a result that is not a vector or a
  scalar, a histogram sample, or anything malformed;
- otherwise the value fails when the comparison is true.

The time of an evaluation is always the one Prometheus returned, never this process's clock.
"""

import json
import math
import re
from dataclasses import dataclass
from enum import StrEnum

from autorollback.config import quote, shown

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Inf|NaN")
_MAX_LABELS = 10  # label names quoted in the error about several series
_MESSAGE = 200  # characters of Prometheus's own error message quoted back
OPS = (">", ">=", "<", "<=")
BAD_DATA = "bad_data"  # Prometheus's errorType for a query it cannot parse: a configuration error


class Kind(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NO_DATA = "no_data"
    ERROR = "error"


@dataclass(frozen=True)
class Reading:
    """One query's answer: a finite `value`, or why there is none (`no_data` or `error`)."""

    value: float | None = None
    at: float | None = None  # Prometheus's evaluation timestamp (unix seconds), when it gave one
    no_data: str = ""
    error: str = ""
    error_type: str = ""  # Prometheus's errorType (bad_data, execution, timeout...) when it said one


def failed(message: str, error_type: str = "") -> Reading:
    """A transport failure or an answer that cannot be read."""
    return Reading(error=message, error_type=error_type)


def read_body(status: int, body: bytes | str) -> Reading:
    """The HTTP answer of /api/v1/query: Prometheus answers its own errors in JSON with 4xx/5xx; a
    proxy's or an authenticator's answer (HTML, 401, 502...) is an error that quotes its status only."""
    try:
        response = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return failed(f"HTTP {status}: the answer is not JSON (not Prometheus, or a proxy in between)")
    reading = read(response)
    if reading.error or 200 <= status < 300:
        return reading
    return failed(f"HTTP {status} with a successful-looking body")


def read(response: object) -> Reading:
    """The Reading of one decoded /api/v1/query response."""
    if not isinstance(response, dict):
        return failed("the answer is not a Prometheus API response (not a JSON object)")
    status = response.get("status")
    if status == "error":
        kind = response.get("errorType")
        kind = kind if isinstance(kind, str) else ""
        message = response.get("error")
        message = quote(message, _MESSAGE) if isinstance(message, str) else "(no message)"
        return failed(f"Prometheus error {shown(kind, 40) or '(no type)'}: {message}", kind)
    if status != "success":
        return failed("the answer has no status success or error: not a Prometheus API response")
    data = response.get("data")
    if not isinstance(data, dict):
        return failed("the answer has no data object")
    result_type, result = data.get("resultType"), data.get("result")
    if result_type == "scalar":
        return _sample(result)
    if result_type != "vector":
        kind = shown(result_type, 40) if isinstance(result_type, str) else "(none)"
        return failed(
            f"the query returned a {kind}: it must return one number (an instant vector of one series or a scalar)"
        )
    if not isinstance(result, list):
        return failed("the vector result is not a list")
    if not result:
        return Reading(no_data="the query returned no series")
    if len(result) > 1:
        return failed(_several(result))
    series = result[0]
    if not isinstance(series, dict):
        return failed("a series of the result is not an object")
    if "value" not in series:
        what = "a histogram sample" if "histogram" in series else "no value"
        return failed(f"the series has {what}, not a number: wrap it in a function that returns floats")
    return _sample(series["value"])


def _several(result: list[object]) -> str:
    names: set[str] = set()
    for series in result:
        metric = series.get("metric") if isinstance(series, dict) else None
        if isinstance(metric, dict):
            names.update(k for k in metric if isinstance(k, str))
    listed = sorted(names)
    labels = ", ".join(shown(n, 40) for n in listed[:_MAX_LABELS])
    if len(listed) > _MAX_LABELS:
        labels += f" and {len(listed) - _MAX_LABELS} more"
    return (
        f"the query returned {len(result)} series, not one: aggregate it (e.g. sum(...) or max(...)); "
        f"labels that tell them apart may be among: {labels or '(none)'}"
    )


def _sample(pair: object) -> Reading:
    if not isinstance(pair, list) or len(pair) != 2:
        return failed("a sample is not a [timestamp, value] pair")
    at, text = pair
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        return failed("a sample's timestamp is not a number")
    if not isinstance(text, str) or not _NUMBER.fullmatch(text):
        return failed("a sample's value is not a number in a string")
    value = float(text)
    if not math.isfinite(value):
        return Reading(at=float(at), no_data=f"the value is {text} (e.g. 0/0 when there is no traffic)")
    return Reading(value=value, at=float(at))


@dataclass(frozen=True)
class Limit:
    """The fail condition: `result <op> amount`, or in relative mode `result <op> baseline <relative>
    amount` (relative is "+", "-" or "*")."""

    op: str
    amount: float
    relative: str = ""

    def __post_init__(self) -> None:
        if self.op not in OPS or self.relative not in ("", "+", "-", "*") or not math.isfinite(self.amount):
            raise ValueError(f"invalid limit {self.op} {self.relative} {self.amount}")

    def bound(self, baseline: float | None) -> float:
        if not self.relative:
            return self.amount
        if baseline is None:
            raise ValueError("a relative limit needs the previous revision's value")
        if self.relative == "+":
            return baseline + self.amount
        if self.relative == "-":
            return baseline - self.amount
        return baseline * self.amount

    def fails(self, value: float, bound: float) -> bool:
        return {">": value > bound, ">=": value >= bound, "<": value < bound, "<=": value <= bound}[self.op]

    def describe(self) -> str:
        if not self.relative:
            return f"result {self.op} {self.amount:g}"
        return f"result {self.op} baseline {self.relative} {self.amount:g}"


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    value: float | None = None
    bound: float | None = None  # what the value was compared with (the threshold, or baseline and margin)
    baseline: float | None = None
    at: float | None = None  # Prometheus's evaluation time of the check's query
    detail: str = ""
    error_type: str = ""

    @property
    def configuration_error(self) -> bool:
        """Prometheus could not parse the query: the template is wrong, not the release."""
        return self.kind is Kind.ERROR and self.error_type == BAD_DATA

    def describe(self, op: str) -> str:
        if self.kind in (Kind.PASS, Kind.FAIL) and self.value is not None and self.bound is not None:
            shown_op = op if self.kind is Kind.FAIL else {">": "<=", ">=": "<", "<": ">=", "<=": ">"}[op]
            text = f"{self.value:g} {shown_op} {self.bound:g}"
            return text + (f" (previous revision {self.baseline:g})" if self.baseline is not None else "")
        return self.detail


def classify(
    limit: Limit,
    reading: Reading,
    guard: Reading | None = None,
    minimum: float | None = None,
    baseline: Reading | None = None,
) -> Outcome:
    """One evaluation: the check's reading, its traffic guard's reading and minimum (when the check
    has a guard), and in relative mode the previous revision's reading."""
    if reading.error:
        return Outcome(Kind.ERROR, at=reading.at, detail=reading.error, error_type=reading.error_type)
    if guard is not None:
        if guard.error:
            return Outcome(Kind.ERROR, at=guard.at, detail=f"traffic guard: {guard.error}", error_type=guard.error_type)
        if guard.value is None:
            return Outcome(Kind.NO_DATA, at=reading.at, detail=f"traffic guard: {guard.no_data}")
        if minimum is not None and guard.value < minimum:
            return Outcome(
                Kind.NO_DATA, at=reading.at, detail=f"traffic {guard.value:g} is below the minimum {minimum:g}"
            )
    if reading.value is None:
        return Outcome(Kind.NO_DATA, at=reading.at, detail=reading.no_data)
    base: float | None = None
    if limit.relative:
        if baseline is None:
            return Outcome(Kind.NO_DATA, reading.value, at=reading.at, detail="no previous revision to compare with")
        if baseline.error:
            detail = f"previous revision: {baseline.error}"
            return Outcome(Kind.ERROR, reading.value, at=reading.at, detail=detail, error_type=baseline.error_type)
        if baseline.value is None:
            return Outcome(Kind.NO_DATA, reading.value, at=reading.at, detail=f"previous revision: {baseline.no_data}")
        base = baseline.value
    bound = limit.bound(base)
    if not math.isfinite(bound):
        return Outcome(Kind.NO_DATA, reading.value, at=reading.at, detail="the limit is not a finite number")
    kind = Kind.FAIL if limit.fails(reading.value, bound) else Kind.PASS
    return Outcome(kind, reading.value, bound, base, reading.at)
