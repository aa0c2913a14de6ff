#!/usr/bin/env python3
"""The "traffic" of make demo-metrics: the demo's pods are KWOK fake pods that serve nothing, so this
process pretends they do. Every second it lists the namespace's pods (kubectl) and, for each running
pod, adds --rps requests to `http_requests_total{namespace,pod,code}`: code="500" for the error share
of the pod's image (--error-share IMAGE=SHARE; 0 for any other image) and code="200" for the rest. A
pod serves without errors for its first --errors-after seconds (as a release that starts fine and
fails under load), and its series go away with it. Serves GET /metrics on 127.0.0.1:--port for a
Prometheus that scrapes it with honor_labels: true. Standard library only.

    hack/demo-traffic.py --namespace autorollback-demo-metrics --port 19192 \
        --error-share registry.example/shop:2.0.0=0.3 --errors-after 15
"""

import argparse
import http.server
import json
import os
import subprocess
import sys
import threading
import time


def _share(text: str) -> tuple[str, float]:
    image, sep, share = text.rpartition("=")
    try:
        value = float(share)
    except ValueError:
        value = -1.0
    if not sep or not image or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: write IMAGE=SHARE with SHARE from 0 to 1")
    return image, value


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Traffic:
    def __init__(self, namespace: str, kubectl: str, shares: dict[str, float], rps: int, errors_after: float):
        self.namespace, self.kubectl, self.shares = namespace, kubectl, shares
        self.rps, self.errors_after = rps, errors_after
        self.lock = threading.Lock()
        self.counts: dict[tuple[str, str], int] = {}  # (pod, code) -> requests
        self.carry: dict[str, float] = {}  # pod -> the fraction of an error not yet counted
        self.first_seen: dict[str, float] = {}  # pod -> monotonic time this process first saw it running

    def pods(self) -> list[tuple[str, str]] | None:
        """(name, image) of the namespace's running pods, or None when kubectl fails."""
        done = subprocess.run(
            [self.kubectl, "-n", self.namespace, "get", "pods", "-o", "json", "--request-timeout=5s"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"demo-traffic: kubectl: {done.stderr.strip()}", file=sys.stderr, flush=True)
            return None
        found = []
        for pod in json.loads(done.stdout)["items"]:
            meta, status = pod["metadata"], pod.get("status") or {}
            if meta.get("deletionTimestamp") or status.get("phase") != "Running":
                continue
            found.append((meta["name"], pod["spec"]["containers"][0]["image"]))
        return found

    def tick(self) -> None:
        pods = self.pods()
        if pods is None:
            return
        now = time.monotonic()
        with self.lock:
            live = {name for name, _ in pods}
            for name, image in pods:
                first = self.first_seen.setdefault(name, now)
                share = self.shares.get(image, 0.0) if now - first >= self.errors_after else 0.0
                owed = self.carry.get(name, 0.0) + self.rps * share
                errors = min(self.rps, int(owed + 1e-9))
                self.carry[name] = owed - errors
                self.counts[(name, "500")] = self.counts.get((name, "500"), 0) + errors
                self.counts[(name, "200")] = self.counts.get((name, "200"), 0) + self.rps - errors
            for gone in [key for key in self.counts if key[0] not in live]:  # its series go stale
                del self.counts[gone]
            for gone in [name for name in self.first_seen if name not in live]:
                self.first_seen.pop(gone)
                self.carry.pop(gone, None)

    def body(self) -> str:
        with self.lock:
            items = sorted(self.counts.items())
        lines = ["# TYPE http_requests_total counter"]
        ns = _escape(self.namespace)
        for (pod, code), value in items:
            lines.append(f'http_requests_total{{namespace="{ns}",pod="{_escape(pod)}",code="{code}"}} {value}')
        return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--namespace", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--kubectl", default="kubectl", help="the kubectl binary (KUBECONFIG from the environment)")
    p.add_argument("--error-share", type=_share, action="append", default=[], metavar="IMAGE=SHARE")
    p.add_argument("--rps", type=int, default=20, help="requests per second per pod (default 20)")
    p.add_argument("--errors-after", type=float, default=0.0, metavar="SECONDS")
    args = p.parse_args()
    traffic = Traffic(args.namespace, args.kubectl, dict(args.error_share), args.rps, args.errors_after)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path.split("?")[0] == "/metrics"
            body = (traffic.body() if found else "not found\n").encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # quiet: Prometheus scrapes every second
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"demo-traffic: http://127.0.0.1:{args.port}/metrics, pid {os.getpid()}", flush=True)
    try:
        while True:
            started = time.monotonic()
            traffic.tick()
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
