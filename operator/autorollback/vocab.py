"""The words decisions and jobs are told in. Each value is the string Events, metrics, marks and
log lines have always carried, so naming a member changes nothing anyone sees."""

from enum import StrEnum


class Result(StrEnum):
    """What was done about a failure: the metric's `result` label, the start of the outcome mark."""

    SUCCESS = "success"
    SKIPPED = "skipped"
    IMPOSSIBLE = "impossible"
    ABANDONED = "abandoned"
    FAILED = "failed"
    DRY_RUN = "dry_run"
    NOTHING = "nothing"  # never reported


class Reason(StrEnum):
    """Why, when no failure reason (ProgressDeadlineExceeded, a fast signal's name) says it."""

    OPTED_OUT = "opted_out"
    NO_FAILURE = "no_failure"
    STALE = "stale"  # the condition is about another template, or the current one has no ReplicaSet yet
    ROLLED_BACK = "rolled_back"
    HANDLED = "handled"
    REAPPLIED = "reapplied"
    RESTORED_REVISION_FAILED = "restored_revision_failed"
    PAUSED = "paused"
    NO_TARGET = "no_target"
    TEMPLATE_MATCHES = "template_matches"
    DRY_RUN = "dry_run"
    API_ERROR = "api_error"
    CAPPED = "capped"  # the cluster-wide cap on metric-triggered rollbacks was reached
    UNSUPPORTED = "unsupported"  # an OnDelete update strategy: the controller replaces no pod


class Job(StrEnum):
    """What a state of a workload asks the worker for (also the `operation` label of API errors)."""

    FAILURE = "failure"
    FAST = "fast"
    HEALTHY = "healthy"
    KNOWN_BAD = "known_bad"
    HISTORY_LIMIT = "history"
    ON_DELETE = "on_delete"
    PROBLEMS = "problems"
    STRAYS = "strays"
    BAKE = "bake"
    STUCK = "stuck"  # a StatefulSet left stuck by its rollback: delete its broken pods (decision.stuck)
