"""Writes racing the operator's rollback: a real 409 from the API server, then a new decision.

The rollback runs in this process against the real cluster; a competing write is made right
before the operator's patch, exactly where a person or a GitOps controller could make one.
"""

import pytest

from autorollback import checkpoints, config as annotations, kube, reconcile, state
from autorollback.context import Context
from autorollback.gitrevert import worker
from autorollback.workloads.deployment import DEPLOYMENTS

from . import kit

ON = {"autorollback.io/enabled": "true"}
V1, V2, V3 = (f"registry.example/web:{v}" for v in ("1.0.0", "2.0.0", "3.0.0"))


@pytest.fixture
def ctx(tmp_path) -> Context:
    """What `autorollback run` would start with (no Git workers: nothing here reverts)."""
    api = kube.connect()
    return Context(api, worker.Worker(api, worker.Settings(workdir=tmp_path, workers=0)), checkpoints.new_key())


@pytest.fixture
def failed(namespace: str, ctx: Context) -> dict:
    kit.release(namespace, "web", V1, annotations=ON)
    kit.wait_for(lambda: kit.is_available(namespace, "web"), 90, "revision 1")
    kit.release(namespace, "web", V2, failure="not-ready", annotations=ON)
    return kit.wait_for(lambda: kit.is_failed(namespace, "web"), 90, "the rollout to fail")


def handle(ctx: Context, deployment: dict) -> reconcile.PassResult:
    meta = deployment["metadata"]
    work = reconcile.Work(
        ctx=ctx,
        uid=meta["uid"],
        namespace=meta["namespace"],
        name=meta["name"],
        deployment=deployment,
        config=annotations.parse(ON),
        jobs={state.FAILURE},
        workload=DEPLOYMENTS,
    )
    return reconcile.run(work)


def race(monkeypatch: pytest.MonkeyPatch, *competing: str, settle=None) -> list[int]:
    """Run `kubectl competing...` just before the operator's first patch; return the patch attempts."""
    real, attempts = kube.Client.patch_deployment, []

    def patch(api: kube.Client, namespace: str, name: str, ops: list, **kw: str) -> dict:
        if not attempts:
            kit.kubectl("-n", namespace, *competing)
            if settle:
                settle(namespace)
        attempts.append(1)
        return real(api, namespace, name, ops, **kw)

    monkeypatch.setattr(kube.Client, "patch_deployment", patch)
    return attempts


def test_a_newer_template_is_never_overwritten(namespace: str, ctx: Context, failed: dict, monkeypatch) -> None:
    attempts = race(monkeypatch, "set", "image", "deployment/web", f"app={V3}")
    result = handle(ctx, failed)
    assert result.retry is None
    assert len(attempts) == 1  # the conflicting patch was not retried blindly
    assert kit.image_of(kit.get_deployment(namespace, "web")) == V3
    assert kit.events(namespace, "web") == []  # nothing to say: someone deployed a new version


def test_an_unrelated_write_means_decide_again_and_roll_back(
    namespace: str, ctx: Context, failed: dict, monkeypatch
) -> None:
    attempts = race(monkeypatch, "label", "deployment/web", "team=payments")
    assert handle(ctx, failed).retry is None
    # 409, re-read, re-decided, patched (the controller's own status writes may add a conflict or two)
    assert 2 <= len(attempts) <= reconcile.CONFLICT_ATTEMPTS
    after = kit.get_deployment(namespace, "web")
    assert kit.image_of(after) == V1 and after["metadata"]["labels"]["team"] == "payments"  # the write survived
    assert [e["reason"] for e in kit.events(namespace, "web")].count("RolledBack") == 1


def test_a_scale_that_counts_as_progress_restarts_the_deadline(
    namespace: str, ctx: Context, failed: dict, monkeypatch
) -> None:
    # Scaling the old ReplicaSet down is progress to the controller: the failure is gone until the
    # new deadline runs out, and the operator follows the controller rather than its old reading.
    def progressing(ns: str) -> None:  # the controller has counted the scale-down as progress
        kit.wait_for(
            lambda: (
                kit.condition(kit.get_deployment(ns, "web"), "Progressing").get("reason") != "ProgressDeadlineExceeded"
            ),
            30,
            "the scale to count as progress",
            interval=0.1,
        )

    race(monkeypatch, "scale", "deployment/web", "--replicas=2", settle=progressing)
    assert handle(ctx, failed).retry is None
    assert kit.image_of(kit.get_deployment(namespace, "web")) == V2 and kit.events(namespace, "web") == []
    again = kit.wait_for(lambda: kit.is_failed(namespace, "web"), 60, "the new deadline to run out")
    monkeypatch.undo()
    assert handle(ctx, again).retry is None
    after = kit.get_deployment(namespace, "web")
    assert kit.image_of(after) == V1 and after["spec"]["replicas"] == 2  # the scale survived


def test_an_opt_out_just_before_the_patch_is_honoured(namespace: str, ctx: Context, failed: dict, monkeypatch) -> None:
    attempts = race(monkeypatch, "annotate", "--overwrite", "deployment/web", "autorollback.io/enabled=false")
    assert handle(ctx, failed).retry is None
    assert len(attempts) == 1 and kit.image_of(kit.get_deployment(namespace, "web")) == V2
    assert kit.events(namespace, "web") == []


def test_a_switch_to_dry_run_just_before_the_patch_is_honoured(
    namespace: str, ctx: Context, failed: dict, monkeypatch
) -> None:
    attempts = race(monkeypatch, "annotate", "--overwrite", "deployment/web", "autorollback.io/mode=dry-run")
    assert handle(ctx, failed).retry is None
    assert len(attempts) == 1 and kit.image_of(kit.get_deployment(namespace, "web")) == V2
    assert [e["reason"] for e in kit.events(namespace, "web")] in (
        ["RolloutFailed", "RollbackPlanned"],
        ["RollbackPlanned", "RolloutFailed"],
    )
