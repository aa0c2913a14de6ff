"""What one operator process was started with, created once at start-up (`runner`) and passed to
the shell explicitly, as kopf passes its own memo and settings: no module holds process state.

The pure core (decision, history, ledger, config, workloads, signals' verdicts) never sees it."""

import threading
from dataclasses import dataclass, field

from autorollback import kube
from autorollback.checks import settings as checks
from autorollback.checks.cap import Cap
from autorollback.checks.prometheus import Client as Prometheus
from autorollback.checks.settings import ChecksSettings
from autorollback.gitrevert.worker import Worker
from autorollback.workloads.base import Api

EVALUATIONS = 4


@dataclass(frozen=True)
class Context:
    api: kube.Client  # guarded by leader election when it is on: only the leader writes
    git: Worker  # the revert workers (--git-* settings)
    checkpoint_key: bytes  # signs the checkpoints of measured deadlines (--checkpoint-secret, else this process's)
    pod_signals: bool = True  # --no-pod-signals: no pod is ever read
    # --no-delete-stuck-pods: a StatefulSet left stuck by its rollback is never finished (decision.stuck)
    delete_stuck_pods: bool = True
    checks: ChecksSettings = field(default_factory=ChecksSettings)  # --prometheus-*, --checks-*, --alert*
    prometheus: Prometheus | None = None  # the metric checks' client, when --prometheus-url is set
    # metric check evaluations at once, process-wide: a bake that finds none free looks again shortly,
    # so that no worker waits on Prometheus while a deadline is due
    evaluations: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(EVALUATIONS))
    # metric-triggered rollbacks so far in the window (--metric-rollbacks-max, --metric-rollbacks-window)
    metric_rollbacks: Cap = field(default_factory=lambda: Cap(checks.MAX_ROLLBACKS, checks.ROLLBACKS_WINDOW))

    def api_for(self, kind: str) -> Api:
        """The I/O of one kind's adapter (workloads.base.Api), on this process's client."""
        return kube.api_for(self.api, kind)
