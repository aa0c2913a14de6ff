"""Carries out what a Deployment's state asks for, in a worker thread: gathers facts through
`kube`, asks `decision`, applies the answer, and tells everyone (Events, metrics, one log line
per decision). It never touches the shared memory: it returns a PassResult that the event loop
records, and an API error that is worth another try makes the work go back in the queue.

Order of writes for a rollback, and why a crash anywhere is safe:
1. the rollback PATCH carries the ledger entry (same write): before it, nothing happened and the
   failure is decided again after a restart; after it, the ledger says "rolled back" and no
   replica can roll the same failure back again (the resourceVersion precondition stops a second
   writer that decided on the state before the patch);
2. Events and metrics: lost on a crash in between, never repeated;
3. the failing ReplicaSet's marks (failed-at, outcome): only for people and for the outcomes that
   do not patch the Deployment; a rollback is known from the ledger without them. A rollback whose
   marks are missing (a crash before 2 or 3) is reported late when the revision it restored
   completes (`decision.late_report`), before the restored ReplicaSet's healthy mark is written,
   so a report that fails leaves that ReplicaSet unproven and the next try decides the same.

Modules: `jobs` (one pass: which jobs run, their results merged), `attempt` (decide, patch, decide
again on a conflict), `reads` (consistent reads), `report` (telling an outcome), `recovery` (after a
rollout completes), `measure` (the measured deadline), `upkeep` (configuration Warnings), `secret`
(the checkpoint key), `work` (what a pass is given and returns).
"""

from autorollback.reconcile.attempt import CONFLICT_ATTEMPTS
from autorollback.reconcile.jobs import run
from autorollback.reconcile.secret import checkpoint_key
from autorollback.reconcile.work import PassResult, Work

__all__ = ["CONFLICT_ATTEMPTS", "PassResult", "Work", "checkpoint_key", "run"]
