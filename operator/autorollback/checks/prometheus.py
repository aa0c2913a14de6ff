"""The Prometheus HTTP API client of the metric checks: the shell around `outcome` (I/O here only).

`Client(settings).query(promql)` is one instant query, `POST <url>/api/v1/query` with the form
fields `query` and `timeout` and never `time` (Prometheus evaluates at its own now, and the Reading
carries the timestamp it returned). It never raises for anything Prometheus or the network does:
every failure is an error Reading (outcome.failed) whose message names what went wrong without
the token, and quotes at most outcome's limit of Prometheus's own message.

- bearer token: read from its file at the first query and again whenever the file changes (a
  projected ServiceAccount token or a Secret rotated by the kubelet), never logged or quoted;
- TLS: verified, against the CA file when one is set (read again when it changes), else the system's;
- deadline: `timeout` seconds end to end for connecting, sending and reading, enforced by this
  process (each socket operation gets what is left); Prometheus is asked to give up a little
  sooner, so its own `timeout` error usually arrives first;
- size: an answer bigger than `max_bytes` (1 MiB) is an error, read no further;
- redirects are not followed (the token goes to no other address).

Thread-safe: one Client is shared by a thread pool (urllib3's connection pool; the token and CA
are cached under a lock).
"""

import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import urllib3

from autorollback.checks import outcome
from autorollback.checks.settings import PrometheusSettings

MAX_BYTES = 1 << 20
MAX_TOKEN_BYTES = 64 * 1024
CHUNK = 64 * 1024
SERVER_SHARE = 0.9  # of the client's timeout, asked of Prometheus (its `timeout` parameter)
POOL_SIZE = 8  # connections kept to Prometheus (more are opened when needed, not kept)
PATH = "/api/v1/query"
T = TypeVar("T")


class _FileError(Exception):
    """A token or CA file that cannot be used; the message says why, never what it holds."""


@dataclass(frozen=True)
class _Cached:
    stamp: tuple[int, int, int, int]  # device, inode, size, mtime: the file changed when this did
    value: str


def _stamp(path: str) -> tuple[int, int, int, int]:
    st = os.stat(path)  # follows the symlinks a mounted Secret or ConfigMap is made of
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _read_token(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TOKEN_BYTES + 1)
    except OSError as e:
        raise _FileError(f"cannot read the bearer token file ({type(e).__name__})") from None
    if len(data) > MAX_TOKEN_BYTES:
        raise _FileError(f"the bearer token file is larger than {MAX_TOKEN_BYTES} bytes")
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        token = ""
    if not token or not all("\x21" <= c <= "\x7e" for c in token):
        raise _FileError("the bearer token file is empty or holds characters outside printable ASCII")
    return token


class Client:
    """Instant queries to one Prometheus; see the module's docstring."""

    def __init__(self, settings: PrometheusSettings, max_bytes: int = MAX_BYTES) -> None:
        self.settings, self.max_bytes = settings, max_bytes
        self.url = settings.url.rstrip("/") + PATH
        self._lock = threading.Lock()
        self._token: _Cached | None = None
        self._ca: tuple[int, int, int, int] | None = None
        self._pool: urllib3.PoolManager | None = None

    # -- cached files ---------------------------------------------------------------------------

    def _bearer(self) -> str | None:
        path = self.settings.bearer_token_file
        if path is None:
            return None
        try:
            stamp = _stamp(path)
        except OSError as e:
            raise _FileError(f"cannot read the bearer token file ({type(e).__name__})") from None
        with self._lock:
            if self._token is None or self._token.stamp != stamp:
                self._token = _Cached(stamp, _read_token(path))
            return self._token.value

    def _http(self) -> urllib3.PoolManager:
        ca = self.settings.ca_file
        try:
            stamp = _stamp(ca) if ca is not None else None
        except OSError as e:
            raise _FileError(f"cannot read the CA file ({type(e).__name__})") from None
        with self._lock:
            if self._pool is None or stamp != self._ca:
                old = self._pool
                self._pool = urllib3.PoolManager(
                    num_pools=2, maxsize=POOL_SIZE, cert_reqs="CERT_REQUIRED", ca_certs=ca, retries=False
                )
                self._ca = stamp
                if old is not None:
                    old.clear()  # idle connections only: a request in flight keeps its own
            return self._pool

    # -- the query ------------------------------------------------------------------------------

    def query(self, promql: str) -> outcome.Reading:
        """One instant query; an error Reading for whatever goes wrong (never an exception)."""
        return self.ask(promql, outcome.read_body, outcome.failed)

    def ask(self, promql: str, read: Callable[[int, bytes], T], failed: Callable[[str], T]) -> T:
        """One instant query, its answer read by `read` (HTTP status, body); `failed(message)` for a
        transport failure (never an exception)."""
        timeout = self.settings.timeout
        deadline = time.monotonic() + timeout
        try:
            headers = {"Accept": "application/json"}
            token = self._bearer()
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            http = self._http()
        except _FileError as e:
            return failed(str(e))
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urllib.parse.urlencode({"query": promql, "timeout": f"{timeout * SERVER_SHARE:.3f}"})
        try:
            response = http.urlopen(
                "POST",
                self.url,
                body=body.encode(),
                headers=headers,
                preload_content=False,
                redirect=False,
                retries=False,
                timeout=urllib3.Timeout(total=timeout),
            )
        except urllib3.exceptions.HTTPError as e:
            return failed(self._unreachable(e, timeout))
        complete = False
        try:
            if 300 <= response.status < 400:
                return failed(
                    f"HTTP {response.status}: Prometheus answered with a redirect, which is not followed "
                    "(is the URL right?)"
                )
            answer = self._body(response, deadline)
            if answer is None:
                return failed(f"the answer is larger than {self.max_bytes} bytes")
            complete = True
        except TimeoutError:
            return failed(f"no complete answer within the timeout of {timeout:g}s")
        except (urllib3.exceptions.HTTPError, OSError) as e:
            return failed(self._unreachable(e, timeout))
        finally:
            if complete:
                response.release_conn()  # read to its end: the connection is reused
            else:
                response.close()
        return read(response.status, answer)

    def _body(self, response: urllib3.BaseHTTPResponse, deadline: float) -> bytes | None:
        """The body, or None past max_bytes; TimeoutError past the deadline."""
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock = getattr(getattr(response, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(left)  # the read timeout of what is left, not of the whole query again
            try:
                chunk = response.read1(CHUNK)  # one read from the socket: read() would wait for CHUNK bytes
            except urllib3.exceptions.ReadTimeoutError:
                raise TimeoutError from None
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)

    def _unreachable(self, e: BaseException, timeout: float) -> str:
        reason = getattr(e, "reason", None) or e  # MaxRetryError wraps the cause
        # NameResolutionError < NewConnectionError < ConnectTimeoutError < TimeoutError: in this order.
        if isinstance(reason, urllib3.exceptions.NameResolutionError):
            return "cannot resolve Prometheus's host name"
        if isinstance(reason, urllib3.exceptions.NewConnectionError | ConnectionError):
            cause = reason if isinstance(reason, OSError) else reason.__cause__
            why = getattr(cause, "strerror", None) or "refused or unreachable"
            return f"cannot connect to Prometheus ({why})"
        if isinstance(reason, urllib3.exceptions.TimeoutError | TimeoutError):
            return f"Prometheus did not answer within the timeout of {timeout:g}s"
        if isinstance(reason, urllib3.exceptions.SSLError):
            return "TLS with Prometheus failed (is the CA file the one that signed its certificate?)"
        if isinstance(reason, urllib3.exceptions.ProtocolError):
            return "the connection to Prometheus broke off"
        return f"no answer from Prometheus ({type(reason).__name__})"

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.clear()
