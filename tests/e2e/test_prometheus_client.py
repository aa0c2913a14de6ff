"""checks.prometheus.Client against the real Prometheus of the suite (tests/e2e/prometheus.py), and
against a tiny local HTTP server for what Prometheus cannot show: the bearer token and its rotation,
the form sent (never a `time`), a server that hangs or trickles, a redirect, an answer too big, TLS.
Every failure is an error Reading, never an exception, and never quotes the token."""

import http.server
import ssl
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from autorollback.checks import outcome
from autorollback.checks.prometheus import Client
from autorollback.checks.settings import PrometheusSettings

from . import kit
from .prometheus import Prometheus

SUCCESS = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.5,"0.25"]}]}}'
TOKEN = "s3cret-token-" + uuid.uuid4().hex


class Local:
    """`POST /api/v1/query` on 127.0.0.1 answered by `answer(handler)`; every request recorded."""

    def __init__(self, answer: Callable[[http.server.BaseHTTPRequestHandler], None], tls: ssl.SSLContext | None = None):
        self.requests: list[dict[str, Any]] = []
        local = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                local.requests.append({"path": self.path, "headers": dict(self.headers), "form": form})
                answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = kit.free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def reply(status: int, body: bytes, headers: dict[str, str] | None = None) -> Callable[[Any], None]:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for k, v in {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})}.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    return answer


@pytest.fixture
def local() -> Iterator[Callable[..., Local]]:
    servers: list[Local] = []

    def make(answer: Callable[[Any], None], tls: ssl.SSLContext | None = None) -> Local:
        servers.append(Local(answer, tls))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def client(url: str, **kw: Any) -> Client:
    return Client(PrometheusSettings(url, **kw))


def test_queries_against_a_real_prometheus(prometheus: Prometheus) -> None:
    ns = f"client-{uuid.uuid4().hex[:5]}"
    ex = prometheus.exporter
    ex.set("requests_total", {"namespace": ns, "pod": "web-1", "code": "500"}, 3)
    ex.set("requests_total", {"namespace": ns, "pod": "web-2", "code": "500"}, 4)
    prometheus.wait_for_value(f'sum(requests_total{{namespace="{ns}"}})', 7)
    c = client(prometheus.url, timeout=5)

    before = time.time()
    reading = c.query(f'sum(requests_total{{namespace="{ns}"}})')
    assert reading.value == 7.0 and not reading.error and not reading.no_data
    assert reading.at is not None and before - 5 < reading.at < time.time() + 5  # Prometheus's own clock

    assert c.query(f'scalar(sum(requests_total{{namespace="{ns}"}}))').value == 7.0  # a scalar result

    empty = c.query(f'sum(requests_total{{namespace="{ns}",pod="nope"}})')
    assert empty.value is None and empty.no_data == "the query returned no series" and not empty.error

    several = c.query(f'requests_total{{namespace="{ns}"}}')
    assert several.error.startswith("the query returned 2 series") and "pod" in several.error

    bad = c.query("sum(")
    assert bad.error_type == outcome.BAD_DATA and bad.error.startswith("Prometheus error bad_data: ")
    assert outcome.classify(outcome.Limit(">", 1), bad).configuration_error

    # Thread-safe: one client, a thread pool.
    with ThreadPoolExecutor(16) as pool:
        values = list(pool.map(lambda _: c.query(f'sum(requests_total{{namespace="{ns}"}})').value, range(64)))
    assert values == [7.0] * 64

    # Prometheus stopped: an error Reading, no exception; started again: answers again.
    prometheus.stop()
    down = c.query("vector(1)")
    assert down.value is None and down.error == "cannot connect to Prometheus (Connection refused)"
    prometheus.start()
    assert c.query("vector(1)").value == 1.0


def test_unreachable_and_unresolvable_are_error_readings() -> None:
    refused = client(f"http://127.0.0.1:{kit.free_port()}").query("up")
    assert refused.error == "cannot connect to Prometheus (Connection refused)"
    unknown = client("http://prometheus.invalid:9090", timeout=3).query("up")
    assert unknown.error == "cannot resolve Prometheus's host name"


def test_the_form_sent_has_query_and_timeout_and_never_time(local) -> None:
    server = local(reply(200, SUCCESS))
    reading = client(server.url + "/prefix/", timeout=4).query('sum(up{namespace="a"})')
    assert reading == outcome.Reading(value=0.25, at=1700000000.5)
    (request,) = server.requests
    assert request["path"] == "/prefix/api/v1/query"
    assert request["form"] == {"query": ['sum(up{namespace="a"})'], "timeout": ["3.600"]}  # no `time`
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in request["headers"]


def test_the_bearer_token_is_sent_and_read_again_when_it_changes(local, tmp_path: Path) -> None:
    server = local(reply(200, SUCCESS))
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    c = client(server.url, bearer_token_file=str(token))
    assert c.query("up").value == 0.25
    assert c.query("up").value == 0.25
    # Rotated as the kubelet does it: a new file swapped in (new inode).
    rotated = tmp_path / "token.new"
    rotated.write_text("rotated-" + TOKEN)
    rotated.replace(token)
    assert c.query("up").value == 0.25
    sent = [r["headers"]["Authorization"] for r in server.requests]
    assert sent == [f"Bearer {TOKEN}", f"Bearer {TOKEN}", f"Bearer rotated-{TOKEN}"]

    token.write_text("two words")
    assert c.query("up").error == "the bearer token file is empty or holds characters outside printable ASCII"
    token.unlink()
    assert c.query("up").error == "cannot read the bearer token file (FileNotFoundError)"
    assert len(server.requests) == 3  # no request without the token


def test_refusals_never_quote_the_token(local, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    html = f"<html>401 Unauthorized: Bearer {TOKEN} is not valid</html>".encode()
    denied = client(local(reply(401, html, {"Content-Type": "text/html"})).url, bearer_token_file=str(token))
    reading = denied.query("up")
    assert reading.error == "HTTP 401: the answer is not JSON (not Prometheus, or a proxy in between)"
    long = b'{"status":"error","errorType":"execution","error":"' + b"x" * 5000 + TOKEN.encode() + b'"}'
    reading = client(local(reply(422, long)).url, bearer_token_file=str(token)).query("up")
    assert reading.error_type == "execution" and TOKEN not in reading.error and len(reading.error) < 300


def test_a_redirect_is_not_followed(local, tmp_path: Path) -> None:
    elsewhere = local(reply(200, SUCCESS))
    token = tmp_path / "token"
    token.write_text(TOKEN)
    server = local(reply(307, b"", {"Location": elsewhere.url + "/api/v1/query"}))
    reading = client(server.url, bearer_token_file=str(token)).query("up")
    assert reading.error.startswith("HTTP 307: Prometheus answered with a redirect, which is not followed")
    assert elsewhere.requests == []  # the token went nowhere else


def test_an_answer_too_big_is_an_error(local) -> None:
    big = b'{"status":"success","data":{"resultType":"vector","result":[' + b" " * (1 << 20) + b"]}}"
    assert client(local(reply(200, big)).url).query("up").error == "the answer is larger than 1048576 bytes"

    def chunked(h: http.server.BaseHTTPRequestHandler) -> None:  # no Content-Length: counted while read
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for _ in range(40):
            piece = b" " * 65536
            h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        h.wfile.write(b"0\r\n\r\n")

    assert client(local(chunked).url).query("up").error == "the answer is larger than 1048576 bytes"
    small = Client(PrometheusSettings(local(reply(200, SUCCESS)).url), max_bytes=len(SUCCESS))
    assert small.query("up").value == 0.25


def test_a_server_that_hangs_or_trickles_is_cut_off_at_the_timeout(local) -> None:
    release = threading.Event()

    def hang(h: http.server.BaseHTTPRequestHandler) -> None:
        release.wait(30)

    def trickle(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(SUCCESS)))
        h.end_headers()
        for byte in SUCCESS:  # one byte every 0.3 s: each read is quick, the whole is not
            if release.wait(0.3):
                return
            h.wfile.write(bytes([byte]))
            h.wfile.flush()

    try:
        for answer in (hang, trickle):
            start = time.monotonic()
            reading = client(local(answer).url, timeout=1.5).query("up")
            took = time.monotonic() - start
            assert reading.value is None and "timeout of 1.5s" in reading.error, reading
            assert 1.4 < took < 2.5, took
    finally:
        release.set()


def test_tls_is_verified_against_the_ca_file(local, tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = local(reply(200, SUCCESS), tls=tls)
    assert client(server.url, ca_file=str(cert)).query("up").value == 0.25
    unverified = client(server.url).query("up")  # the system's CAs do not know this certificate
    assert unverified.error == "TLS with Prometheus failed (is the CA file the one that signed its certificate?)"
    assert client(server.url, ca_file=str(tmp_path / "absent.crt")).query("up").error == (
        "cannot read the CA file (FileNotFoundError)"
    )
