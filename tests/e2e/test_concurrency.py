"""Writes racing the operator's rollback: a real 409 from the API server, then a new decision.

The rollback runs in this process against the real cluster; a competing write is made right
before the operator's patch, exactly where a person or a GitOps controller could make one.
"""
import pytest

from autorollback import annotations, decision, kube, rollback

from . import kit

ON = {"autorollback.io/enabled": "true"}
V1, V2, V3 = (f"registry.example/web:{v}" for v in ("1.0.0", "2.0.0", "3.0.0"))


@pytest.fixture
def failed(namespace: str) -> dict:
    kube.connect()
    kit.release(namespace, "web", V1, annotations=ON)
    kit.wait_for(lambda: kit.is_available(namespace, "web"), 90, "revision 1")
    kit.release(namespace, "web", V2, failure="not-ready", annotations=ON)
    return kit.wait_for(lambda: kit.is_failed(namespace, "web"), 90, "the rollout to fail")


def race(monkeypatch: pytest.MonkeyPatch, *competing: str) -> list[int]:
    """Run `kubectl competing...` just before the operator's first patch; return the patch attempts."""
    real, attempts = kube.patch_deployment, []

    def patch(namespace: str, name: str, ops: list) -> dict:
        if not attempts:
            kit.kubectl("-n", namespace, *competing)
        attempts.append(1)
        return real(namespace, name, ops)

    monkeypatch.setattr(kube, "patch_deployment", patch)
    return attempts


def test_a_newer_template_is_never_overwritten(namespace: str, failed: dict, monkeypatch) -> None:
    attempts = race(monkeypatch, "set", "image", "deployment/web", f"app={V3}")
    d = rollback.handle_failure(failed, annotations.parse(ON), set())
    assert (d.result, d.reason) == (decision.SKIPPED, "template_changed")
    assert len(attempts) == 1  # the conflicting patch was not retried blindly
    assert kit.image_of(kit.get_deployment(namespace, "web")) == V3
    skipped = kit.event(namespace, "web", "RollbackSkipped")
    assert "someone deployed a new version" in skipped["message"]


def test_an_unrelated_write_means_decide_again_and_roll_back(namespace: str, failed: dict, monkeypatch) -> None:
    attempts = race(monkeypatch, "scale", "deployment/web", "--replicas=2")
    d = rollback.handle_failure(failed, annotations.parse(ON), set())
    assert d.result == decision.SUCCESS
    # 409, re-read, re-decided, patched (the controller's own status writes may add a conflict or two)
    assert 2 <= len(attempts) <= rollback.CONFLICT_ATTEMPTS
    after = kit.get_deployment(namespace, "web")
    assert kit.image_of(after) == V1 and after["spec"]["replicas"] == 2  # the scale survived
