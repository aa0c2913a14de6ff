import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import kit
from .gitea import Gitea
from .prometheus import Exporter, Prometheus

# Never touch a cluster the developer happens to point KUBECONFIG at.
os.environ["KUBECONFIG"] = kit.kubeconfig()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.e2e)
    # the tests that wait longest go first: started last, they would make the parallel run's tail.
    # `make test` hands them out one at a time (--maxschedchunk 1): xdist's default first chunk
    # (a quarter of a worker's share, consecutive) gave every slow test to the first worker.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(getattr(request.node, f"report_{when}", None), "failed", False) for when in ("setup", "call"))


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
        base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
        ns = f"{base}-{uuid.uuid4().hex[:5]}"
        kit.kubectl("create", "namespace", ns)
        made.append(ns)
        kit.wait_for(
            lambda: kit.kubectl("-n", ns, "get", "serviceaccount", "default", check=False).returncode == 0,
            30,
            f"the default ServiceAccount in {ns}",
        )
        return ns

    yield make
    if failed(request):  # what CI shows next to the failure
        for ns in made:
            state = kit.kubectl("-n", ns, "get", "deployments,replicasets,pods,events", "-o", "wide", check=False)
            request.node.add_report_section("teardown", f"state of {ns}", state.stdout[-6000:] + state.stderr[-1000:])
            status = kit.kubectl(
                "-n",
                ns,
                "get",
                "deployments",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name} gen={.metadata.generation} {.status}{'\\n'}{end}",
                check=False,
            )
            request.node.add_report_section("teardown", f"Deployments of {ns}", status.stdout[-4000:])
    for ns in made:
        kit.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def namespace(new_namespace) -> str:
    return new_namespace()


@pytest.fixture
def operator_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
    """Start `autorollback run` processes; every one still running is stopped at the end."""
    started: list[kit.Operator] = []

    def start(
        *scope: str,
        extra: tuple[str, ...] = (),
        config: str | None = None,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> kit.Operator:
        op = kit.Operator(
            *scope,
            log_path=tmp_path / f"operator-{len(started)}.log",
            extra=extra,
            config=config,
            env=env,
            python=python,
        )
        started.append(op)
        op.wait_ready()
        return op

    yield start
    for op in started:
        op.stop()
    if failed(request):
        for i, op in enumerate(started):
            request.node.add_report_section("teardown", f"operator {i} log (tail)", op.output()[-8000:])


@pytest.fixture
def gitea(tmp_path: Path) -> Iterator[Gitea]:
    """A real Gitea of the test's own (test modules that share one across tests define their own)."""
    g = Gitea(tmp_path / "gitea")
    yield g
    g.stop()


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """One real Prometheus and its exporter per xdist worker, started when a test first asks."""
    exporter = Exporter()
    try:
        prom = Prometheus(tmp_path_factory.mktemp("prometheus"), exporter)
    except BaseException:
        exporter.close()
        raise
    yield prom
    prom.close()


@pytest.fixture
def prometheus(prometheus_server: Prometheus, request: pytest.FixtureRequest) -> Iterator[Prometheus]:
    """The worker's Prometheus for one test: running, no rule groups, no series; the same after it
    (the test's series and rules are dropped, and it is started again if the test stopped it)."""
    prometheus_server.reset()
    yield prometheus_server
    if failed(request):
        request.node.add_report_section("teardown", "Prometheus log (tail)", prometheus_server.log_tail())
        request.node.add_report_section("teardown", "exporter /metrics", prometheus_server.exporter.body()[-4000:])
    prometheus_server.reset()
