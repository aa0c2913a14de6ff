"""/healthz reports a Deployment watch that has gone silent while Deployments changed."""

import contextlib
import json
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from . import kit


class FreezableProxy:
    """A TCP relay to the API server; freeze() stalls every connection open at that moment."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen_before = 0.0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self.frozen_before = time.monotonic()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            born = time.monotonic()
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, born), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, born: float) -> None:
        try:
            while data := src.recv(65536):
                while born < self.frozen_before and not self.closed:
                    time.sleep(0.05)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed = True
        self.listener.close()


def test_healthz_fails_when_the_watch_misses_changes(namespace: str, operator_factory, tmp_path: Path) -> None:
    config = kit.kubectl_json("config", "view", "--raw", "--minify", "--flatten")
    server = urlparse(config["clusters"][0]["cluster"]["server"])
    proxy = FreezableProxy(server.hostname, server.port)
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    path = tmp_path / "proxied.kubeconfig"
    path.write_text(json.dumps(config))
    try:
        kit.release(namespace, "web", "registry.example/web:1.0.0")
        op = operator_factory("-n", namespace, extra=("--watch-stale-seconds", "2"), config=str(path))
        kit.wait_for(lambda: op.metric("autorollback_watch_events_total") > 0, 30, "a watch event")

        def healthz() -> tuple[int, dict]:
            status, body = kit.http_get(op.url("/healthz"))
            return status, json.loads(body)

        # Quiet is fine: nothing changed that the watch did not deliver.
        kit.wait_for(lambda: "nothing missed" in healthz()[1]["message"], 30, "a quiet but healthy watch")
        assert healthz()[0] == 200 and op.metric("autorollback_watch_healthy") == 1

        proxy.freeze()  # the watch connection stalls, as a half-dead TCP connection would
        kit.kubectl("-n", namespace, "annotate", "deployment/web", "example.com/touched=yes")
        _status, body = kit.wait_for(lambda: r if (r := healthz())[0] == 503 else None, 60, "/healthz to fail")
        assert body["ok"] is False
        assert "stale" in body["message"] or "cannot list" in body["message"], body
        assert op.metric("autorollback_watch_healthy") == 0
        assert any(line.get("event") == "watch unhealthy" for line in op.lines())
    finally:
        proxy.close()
