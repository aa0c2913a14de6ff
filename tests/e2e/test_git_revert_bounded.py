"""One tenant's hostile repositories cannot exhaust the operator: a 300 MB file under git-path and
a history of 50,000 commits, while other Deployments' rollbacks and reverts go on. The memory of the
operator's whole process tree (git included) is read from /proc and stays below the chart's limit."""

import json
import threading
from pathlib import Path

import pytest
import yaml

from . import kit
from .gitea import Gitea
from .test_git_revert_limits import HUGE, commit, fast_import, manifest
from .test_rollback import wait_event

V1, V2 = "registry.example/shop:1.0.0", "registry.example/shop:2.0.0"
ROOT = Path(__file__).resolve().parents[2]


def chart_memory_limit() -> int:
    values = yaml.safe_load((ROOT / "charts/autorollback/values.yaml").read_text())
    text = values["resources"]["limits"]["memory"]
    assert text.endswith("Mi"), text
    return int(text[:-2]) * 1024 * 1024


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


@pytest.mark.slow
def test_huge_files_and_long_histories_stay_bounded(
    namespace: str, operator_factory, gitea: Gitea, tmp_path: Path
) -> None:
    ns = namespace
    zeros = b"\0" * HUGE
    huge = fast_import(
        gitea,
        tmp_path,
        "huge",
        commit(1, {"deploy/shop.yaml": manifest(V1).encode(), "deploy/data.bin": zeros}, "v1")
        + commit(2, {"deploy/shop.yaml": manifest(V2).encode()}, "release 2.0.0"),
    )
    del zeros
    parts = [commit(1, {"deploy/shop.yaml": manifest(V1).encode(), "deploy/cart.yaml": b"0\n"}, "v1")]
    parts += [commit(m, {"deploy/cart.yaml": f"{m}\n".encode()}, f"cart {m}") for m in range(2, 50_000)]
    parts.append(commit(50_000, {"deploy/shop.yaml": manifest(V2).encode()}, "release 2.0.0"))
    long = fast_import(gitea, tmp_path, "long", b"".join(parts))
    del parts
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / gitea.credential_key).write_text(gitea.token)
    op = operator_factory("-n", ns, extra=gitea.revert_args(creds, ns))
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], tree_rss(op.proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    repos = {"huge": (huge, "deploy"), "long": (long, "deploy/shop.yaml"), "plain": (None, None)}
    for name, (repo, path) in repos.items():
        annotations = {"autorollback.io/enabled": "true"}
        if repo:
            annotations.update(
                {
                    "autorollback.io/git-revert": "true",
                    "autorollback.io/git-repo": repo,
                    "autorollback.io/git-path": path,
                    "autorollback.io/git-provider": "gitea",
                }
            )
        kit.release(ns, name, V1, annotations=annotations)
    for name in repos:
        kit.wait_for(lambda: kit.is_available(ns, name), 120, f"{name} v1")
    for name in repos:
        kit.release(
            ns, name, V2, failure="not-ready", annotations=kit.get_deployment(ns, name)["metadata"]["annotations"]
        )
    refused = wait_event(ns, "RevertNotProposed", name="huge", timeout=240)
    proposed = wait_event(ns, "RevertProposed", name="long", timeout=240)
    wait_event(ns, "RolledBack", name="plain", timeout=120)
    done.set()
    sampler.join()
    assert "file_too_large" in refused["message"]
    assert "release 2.0.0" in proposed["message"]
    limit = chart_memory_limit()
    assert 0 < peak[0] < limit, f"the operator's process tree peaked at {peak[0] >> 20} MiB (limit {limit >> 20})"
    assert op.proc.poll() is None
    print(json.dumps({"peak_mib": peak[0] >> 20}))
