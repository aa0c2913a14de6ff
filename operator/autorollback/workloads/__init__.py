"""Workload kinds behind one seam (base.Workload); one adapter per kind.

KINDS: the adapter of each kind the operator watches, by its Kubernetes kind. The shell picks the
adapter here (and the kind's I/O through `Context.api_for`); the pure core is handed it."""

from autorollback.workloads.base import Workload
from autorollback.workloads.daemonset import DAEMONSETS
from autorollback.workloads.deployment import DEPLOYMENTS
from autorollback.workloads.statefulset import STATEFULSETS

KINDS: dict[str, Workload] = {
    DEPLOYMENTS.kind: DEPLOYMENTS,
    STATEFULSETS.kind: STATEFULSETS,
    DAEMONSETS.kind: DAEMONSETS,
}
