"""Benchmark: how fast and how lean is autorollback with many failing Deployments at once?

Usage: .venv/bin/python bench/rollback_bench.py [--deployments 50]   (or: make bench)
Needs the local control plane (make cluster-up). Creates N opted-in Deployments of one replica,
breaks them all at once, and reports how long the rollbacks took and the operator's memory.
Results are written down in bench/README.md with the machine they ran on.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from e2e import kit  # noqa: E402

os.environ["KUBECONFIG"] = kit.kubeconfig()


def rss_mib(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines())
    kib = lambda k: int(fields[k].split()[0]) / 1024  # noqa: E731
    return kib("VmRSS"), kib("VmHWM")


def manifests(ns: str, n: int, failure: str | None, image: str) -> str:
    items = []
    for i in range(n):
        d = kit.deployment(f"app-{i:03d}", image=image, replicas=1, failure=failure, progress_deadline=10,
                           annotations={"autorollback.io/enabled": "true"})
        d["metadata"]["namespace"] = ns
        items.append(d)
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def count_available(ns: str, image: str) -> int:
    items = kit.kubectl_json("-n", ns, "get", "deployments")["items"]
    return sum(1 for d in items if kit.image_of(d) == image and d.get("status", {}).get("availableReplicas") == 1
               and kit.condition(d, "Progressing").get("reason") == "NewReplicaSetAvailable"
               and d["status"].get("observedGeneration") == d["metadata"]["generation"])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--deployments", type=int, default=50)
    args = p.parse_args()
    n = args.deployments
    ns = f"bench-{int(time.time())}"
    kit.kubectl("create", "namespace", ns)
    kit.wait_for(lambda: kit.kubectl("-n", ns, "get", "sa", "default", check=False).returncode == 0, 60, "sa")
    log = Path(tempfile.mkdtemp()) / "operator.log"
    op = kit.Operator("-n", ns, log_path=log, extra=("--log-level", "WARNING"))
    try:
        op.wait_ready()
        idle = rss_mib(op.proc.pid)[0]
        kit.kubectl("apply", "-f", "-", input=manifests(ns, n, None, "registry.example/app:1"))
        kit.wait_for(lambda: count_available(ns, "registry.example/app:1") == n, 600, "all v1 available", 2)
        watching = rss_mib(op.proc.pid)[0]
        broken_at = time.monotonic()
        kit.kubectl("apply", "-f", "-", input=manifests(ns, n, "not-ready", "registry.example/app:2"))
        kit.wait_for(lambda: sum(op.samples("autorollback_rollbacks_total", namespace=ns, result="success")) == n,
                     900, "all rollbacks", 1)
        all_rolled_back = time.monotonic() - broken_at
        kit.wait_for(lambda: count_available(ns, "registry.example/app:1") == n, 600, "all available again", 2)
        rss, peak = rss_mib(op.proc.pid)
        count = op.metric("autorollback_reaction_seconds_count", namespace=ns)
        total = op.metric("autorollback_reaction_seconds_sum", namespace=ns)
    finally:
        op.stop(30)
        kit.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    print(f"deployments: {n} (1 replica each), progressDeadlineSeconds: 10")
    print(f"all {n} rolled back {all_rolled_back:.1f} s after the broken release was applied")
    print(f"reaction (condition lastTransitionTime -> accepted patch): mean {total / max(count, 1):.2f} s "
          f"over {int(count)} rollbacks")
    print(f"operator RSS: idle {idle:.0f} MiB, watching {n} Deployments {watching:.0f} MiB, "
          f"after the rollbacks {rss:.0f} MiB (peak {peak:.0f} MiB)")


if __name__ == "__main__":
    main()
