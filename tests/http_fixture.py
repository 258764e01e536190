"""An HTTP server on 127.0.0.1 that serves files and misbehaves on command, for download tests.

    with FaultyServer({"a.gz": data}) as server:
        server.script("a.gz", 500, "reset", "ok")    # 1st request 500, 2nd cut by a reset, then fine
        fetch(dest, [server.url], ...)
        server.hits("a.gz"), server.ranges("a.gz")    # what the client asked for

Actions, one per request to that file (after the script runs out, every request is "ok"):
    "ok"          the file (206 + Content-Range for a `Range: bytes=N-` request when accept_ranges=True)
    "ignore-range"  the whole file with 200, whatever the Range header asks
    <int>         that HTTP status with an empty body (500, 503, 404...)
    "truncate"    the full Content-Length, half of the body, then a clean close
    "reset"       the full Content-Length, half of the body, then a TCP reset
    "stall"       the full Content-Length, half of the body, then silence (until `stall` s or the server stops)
    "stall-headers"  the headers, then silence (until `stall` s or the server stops)
    "drip"        the full Content-Length, then one byte every `drip` seconds
    "wrong-range"   for a `Range: bytes=N-` request, 206 with a Content-Range (and body) starting at N - 1
    "retry-after:<status>:<value>"  that status (429, 503) with a `Retry-After: <value>` header
    "wrong"       as many bytes as the file, but different ones
    "larger"      the file plus extra bytes, with an honest (too large) Content-Length
    "larger-nolength"  the file plus extra bytes, no Content-Length (ends when the connection closes)
    "redirect:<url>"   302 to <url>
tls=(certfile, keyfile) serves https instead of http.
Bounded: at most `max_requests` requests are served (then 503), and the server stops itself after
`lifetime` seconds if the test forgot to.
"""

import ipaddress
import socket
import ssl
import struct
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

EXTRA = 1 << 20


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    name: str
    range: str | None
    action: str | int


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        name = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path.lstrip("/"))
        requested_range = self.headers.get("Range")
        action = owner._next(name, requested_range)
        body = owner.files.get(name)
        if isinstance(action, int) or body is None:
            self._empty(action if isinstance(action, int) else 404)
            return
        if action.startswith("retry-after:"):
            _, status, value = action.split(":", 2)
            self.send_response(int(status))
            self.send_header("Retry-After", value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if action.startswith("redirect:"):
            self.send_response(302)
            self.send_header("Location", action.removeprefix("redirect:"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if action == "wrong":
            body = bytes(b ^ 0x5A for b in body)
        elif action.startswith("larger"):
            body = body + b"\0" * EXTRA
        start = 0
        if action != "ignore-range" and owner.accept_ranges and (requested_range or "").startswith("bytes="):
            start = int(requested_range.removeprefix("bytes=").split("-")[0])
            if action == "wrong-range":
                start = max(0, start - 1)
        piece = body[start:]
        self.send_response(206 if start else 200)
        if action != "larger-nolength":
            self.send_header("Content-Length", str(len(piece)))
        if owner.accept_ranges:
            self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        cut = action in ("truncate", "reset", "stall")
        try:
            if action == "drip":
                for i in range(len(piece)):
                    if owner.stopping.wait(owner.drip):
                        return
                    self.wfile.write(piece[i : i + 1])
                    self.wfile.flush()
            elif action != "stall-headers":
                self.wfile.write(piece[: len(piece) // 2] if cut else piece)
                self.wfile.flush()
        except OSError:  # the client hung up, as it should on a body that is too large
            return
        if action == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        elif action in ("stall", "stall-headers"):
            owner.stopping.wait(owner.stall)
        self.close_connection = True

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: "FaultyServer"


class FaultyServer:
    """Serve `files` ({name: bytes}) at http://127.0.0.1:<free port>/<name>, misbehaving as scripted."""

    def __init__(
        self,
        files: dict[str, bytes],
        *,
        accept_ranges: bool = True,
        stall: float = 5.0,
        drip: float = 0.5,
        tls: tuple[str, str] | None = None,
        max_requests: int = 100,
        lifetime: float = 60.0,
    ) -> None:
        self.files = dict(files)
        self.accept_ranges = accept_ranges
        self.stall = stall
        self.drip = drip
        self.tls = tls
        self.max_requests = max_requests
        self.lifetime = lifetime
        self.requests: list[Seen] = []
        self.stopping = threading.Event()
        self._scripts: dict[str, list[str | int]] = {}
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._port = 0

    @property
    def url(self) -> str:
        assert self._port, "start the server first (use it as a context manager)"
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._port}/"

    def script(self, name: str, *actions: str | int) -> None:
        """Answer the next requests for `name` with these actions, in order."""
        with self._lock:
            self._scripts[name] = list(actions)

    def hits(self, name: str | None = None) -> int:
        with self._lock:
            return sum(1 for seen in self.requests if name is None or seen.name == name)

    def ranges(self, name: str) -> list[str | None]:
        """The Range header of each request for `name` (None when there was none)."""
        with self._lock:
            return [seen.range for seen in self.requests if seen.name == name]

    def _next(self, name: str, requested_range: str | None) -> str | int:
        with self._lock:
            if len(self.requests) >= self.max_requests:
                action: str | int = 503
            else:
                script = self._scripts.get(name, [])
                action = script.pop(0) if script else "ok"
            self.requests.append(Seen(name, requested_range, action))
            return action

    def start(self) -> "FaultyServer":
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        with self._lock:
            httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        httpd.shutdown()
        httpd.server_close()

    def __enter__(self) -> "FaultyServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def closed_port_url() -> str:
    """The URL of a port on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def self_signed_certificate(folder: Path) -> tuple[str, str]:
    """(certfile, keyfile) of a fresh self-signed certificate for 127.0.0.1, made with `cryptography`."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(certfile), str(keyfile)
