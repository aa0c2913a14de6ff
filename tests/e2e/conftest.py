import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import kit

# Never touch a cluster the developer happens to point KUBECONFIG at.
os.environ["KUBECONFIG"] = kit.kubeconfig()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def cluster() -> None:
    if not Path(kit.kubeconfig()).exists():
        pytest.fail(f"no cluster: {kit.kubeconfig()} is missing (run `make cluster-up`)", pytrace=False)
    kit.kubectl("get", "--raw", "/readyz")


@pytest.fixture
def new_namespace(request: pytest.FixtureRequest) -> Iterator:
    """Make fresh namespaces named after the test; they are deleted afterwards (without waiting)."""
    made: list[str] = []

    def make() -> str:
        base = request.node.name.lower().replace("_", "-")[:40].strip("-")
        ns = f"{base}-{uuid.uuid4().hex[:5]}"
        kit.kubectl("create", "namespace", ns)
        made.append(ns)
        kit.wait_for(lambda: kit.kubectl("-n", ns, "get", "serviceaccount", "default", check=False).returncode == 0,
                     30, f"the default ServiceAccount in {ns}")
        return ns

    yield make
    for ns in made:
        kit.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def namespace(new_namespace) -> str:
    return new_namespace()


@pytest.fixture
def operator_factory(tmp_path: Path) -> Iterator:
    """Start `autorollback run` processes; every one still running is stopped at the end."""
    started: list[kit.Operator] = []

    def start(*scope: str, extra: tuple[str, ...] = (), config: str | None = None,
              env: dict[str, str] | None = None, python: str = sys.executable) -> kit.Operator:
        op = kit.Operator(*scope, log_path=tmp_path / f"operator-{len(started)}.log", extra=extra, config=config,
                          env=env, python=python)
        started.append(op)
        op.wait_ready()
        return op

    yield start
    for op in started:
        op.stop()
