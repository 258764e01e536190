"""Fetch the four IDX files from a list of mirrors, each verified by SHA-256 before it lands in place.

Per file: skip it when the file present already has the right checksum; else try each mirror in order,
streaming to `dest/.<name>.part`, retrying transient failures (5xx, reset, timeout, short body) with
exponential backoff and resuming with an HTTP Range request when the server allows it. Only a file whose
checksum matches is renamed into place, so `dest` never holds a partial or unverified file.
Standard library only (urllib). What a source is (names, mirrors, checksums, limits): pipeline.sources.
"""

import email.utils
import hashlib
import http.client
import os
import re
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import PipelineError, UserError, render
from pipeline.sources import (
    DEADLINE_SLACK,
    DEFAULT_MAX_BYTES,
    DOWNLOAD_MIN_RATE,
    DOWNLOAD_TIMEOUT,
    KNOWN_SIZES,
    check_sha256,
    normalize_mirror,
)

CHUNK = 1 << 16
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}

ProgressCallback = Callable[[int, int | None, str], None]
_sleep = time.sleep  # tests replace it to check the backoff without waiting


class _RetryError(Exception):
    """A transient failure: try the same mirror again after a pause (`retry_after` s if the server said)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _NextMirrorError(Exception):
    """This mirror cannot serve the file (404, wrong bytes, too large...): go to the next one at once."""


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only (urllib alone would also follow one to ftp://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl)).scheme.lower()
        if scheme not in ("http", "https"):
            fp.close()
            raise _NextMirrorError(f"redirected to a {scheme}:// URL, refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_SafeRedirect)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"bad TLS certificate ({exc.verify_message or exc.reason})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, socket.gaierror):
        return f"host not found ({exc.strerror}; offline?)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "server closed the connection"
    return str(exc) or type(exc).__name__


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    """Seconds that a 429/503 answer asks us to wait (Retry-After: seconds or an HTTP date), else None."""
    value = (exc.headers.get("Retry-After") or "").strip() if exc.headers else ""
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _classify(exc: BaseException) -> Exception:
    """Turn a network exception raised before the body into _RetryError (try again) or _NextMirrorError."""
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code in RETRY_STATUS:
            return _RetryError(_describe(exc), _retry_after(exc) if exc.code in (429, 503) else None)
        return _NextMirrorError(_describe(exc))
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError | socket.gaierror | ssl.SSLError | TimeoutError | socket.timeout):
        # nobody listens there, no such host, a bad certificate, or no answer within the timeout
        return _NextMirrorError(_describe(exc))
    return _RetryError(_describe(exc))


def _content_range_start(value: str | None) -> tuple[int, int | None] | None:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    if not match:
        return None
    return int(match[1]), None if match[3] == "*" else int(match[3])


class _Download:
    """One file from one mirror, across attempts: remembers whether the server accepts byte ranges, and
    holds the deadline of the whole transfer (slack + expected size / minimum rate)."""

    def __init__(
        self, url: str, part: Path, name: str, limit: int, policy: "Policy", progress: ProgressCallback | None
    ):
        self.url, self.part, self.name, self.limit, self.policy = url, part, name, limit, policy
        self.progress = progress
        self.ranges = False
        self.total: int | None = None
        self.started = time.monotonic()
        self.deadline = self.started + policy.deadline(limit)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def past_deadline(self, done: int) -> _NextMirrorError:
        seconds = time.monotonic() - self.started
        of = f" of {self.total}" if self.total else ""
        return _NextMirrorError(
            f"too slow: {done}{of} bytes in {seconds:.0f} s, below the minimum of {self.policy.min_rate:g} bytes/s"
        )

    def attempt(self) -> None:
        """Bring `part` to the complete body, or raise _RetryError / _NextMirrorError."""
        if urllib.parse.urlsplit(self.url).scheme == "file":
            return self._copy_local()
        have = self.part.stat().st_size if self.part.exists() else 0
        headers = {"User-Agent": "mnist-cnn-dvc", "Accept-Encoding": "identity"}
        if have and self.ranges:
            headers["Range"] = f"bytes={have}-"
        timeout = max(0.01, min(self.policy.timeout, self.remaining()))
        try:
            response = _opener.open(urllib.request.Request(self.url, headers=headers), timeout=timeout)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code == 416:
                self.part.unlink(missing_ok=True)  # our partial copy does not fit the server's: start over
                raise _RetryError("HTTP 416 Range Not Satisfiable") from None
            raise _classify(exc) from None
        with response:
            start, total = self._start(response, have)
            if total is not None and total > self.limit:
                raise _NextMirrorError(f"serves {total} bytes, more than the expected {self.limit}")
            if total is not None:  # the real size: the deadline follows it (a small file gets a short one)
                self.total = total
                self.deadline = min(self.deadline, self.started + self.policy.deadline(total))
            with open(self.part, "r+b" if start else "wb") as out:
                out.seek(start)
                out.truncate()
                self._stream(response, out, start)

    def _start(self, response: http.client.HTTPResponse, have: int) -> tuple[int, int | None]:
        """(offset at which the body starts, full size of the file or None)."""
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if response.status == 206:
            content_range = _content_range_start(response.headers.get("Content-Range"))
            if content_range is None or content_range[0] != have:
                self.ranges = False  # do not trust its ranges again: the next attempt starts over
                self.part.unlink(missing_ok=True)
                raise _RetryError(f"unexpected Content-Range {render(response.headers.get('Content-Range'))}")
            self.ranges = True
            return have, content_range[1] if content_range[1] is not None else self.total
        self.ranges = response.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
        return 0, length

    def _stream(self, response: http.client.HTTPResponse, out: BinaryIO, start: int) -> None:
        done = start
        while True:
            if self.remaining() <= 0:
                out.flush()
                raise self.past_deadline(done)
            try:
                chunk = response.read1(CHUNK)  # returns what has arrived: a trickle cannot hide the deadline
            except (OSError, http.client.HTTPException) as exc:
                out.flush()
                if done == start and isinstance(exc, TimeoutError | socket.timeout):
                    raise _NextMirrorError(f"stalled: no data for {self.policy.timeout:g} s") from None
                raise _RetryError(f"{_describe(exc)} after {done} bytes") from None
            if not chunk:
                break
            done += len(chunk)
            if done > self.limit:
                raise _NextMirrorError(f"sent more than the expected {self.limit} bytes; cut off")
            out.write(chunk)
            if self.progress:
                self.progress(done, self.total, self.name)
        if self.total is not None and done != self.total:
            out.flush()
            raise _RetryError(f"body cut short at {done} of {self.total} bytes")

    def _copy_local(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.netloc not in ("", "localhost"):
            raise _NextMirrorError(f"file URL on another host ({parts.netloc}) is not supported")
        source = Path(urllib.request.url2pathname(parts.path))
        try:
            with open(source, "rb") as src, open(self.part, "wb") as out:
                self.total = os.fstat(src.fileno()).st_size
                if self.total > self.limit:
                    raise _NextMirrorError(f"is {self.total} bytes, more than the expected {self.limit}")
                done = 0
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if self.progress:
                        self.progress(done, self.total, self.name)
        except FileNotFoundError:
            raise _NextMirrorError("no such file") from None
        except IsADirectoryError:
            raise _NextMirrorError("is a folder, not a file") from None


def _from_mirror(download: _Download, digest: str) -> None:
    """Up to 1 + retries attempts with exponential backoff (or the server's Retry-After), all within the
    transfer's deadline, then check the checksum of the whole file."""
    retries, backoff = max(0, download.policy.retries), download.policy.backoff
    for attempt in range(retries + 1):
        try:
            download.attempt()
            break
        except _RetryError as exc:
            if attempt == retries:
                raise _NextMirrorError(f"{exc} (gave up after {retries + 1} attempt{'s' if retries else ''})") from None
            pause = backoff * 2**attempt if exc.retry_after is None else exc.retry_after
            if pause >= download.remaining():
                asked = "asked to retry after" if exc.retry_after is not None else "next try in"
                raise _NextMirrorError(f"{exc}; {asked} {pause:g} s, past this file's deadline") from None
            _sleep(pause)
    actual = sha256_of(download.part)
    if actual != digest:
        raise _NextMirrorError(f"checksum mismatch (got sha256 {actual[:12]}..., expected {digest[:12]}...)")
    with open(download.part, "rb") as handle:
        os.fsync(handle.fileno())


@dataclass(frozen=True)
class Policy:
    """How long a mirror may take. timeout: seconds to connect or to wait for the next byte (a stall).
    min_rate: bytes/s; with `slack` seconds it sets each file's deadline per mirror. retries: extra
    attempts after a transient failure, pausing backoff * 2**k seconds (or what Retry-After asks)."""

    timeout: float = DOWNLOAD_TIMEOUT
    min_rate: float = DOWNLOAD_MIN_RATE
    slack: float = DEADLINE_SLACK
    retries: int = 3
    backoff: float = 1.0

    def deadline(self, size: int) -> float:
        """Seconds a transfer of `size` bytes may take."""
        return self.slack + size / self.min_rate


def fetch(
    dest: str | os.PathLike,
    mirrors: list[str],
    sha256: dict[str, str],
    *,
    timeout: float = DOWNLOAD_TIMEOUT,
    min_rate: float = DOWNLOAD_MIN_RATE,
    slack: float = DEADLINE_SLACK,
    retries: int = 3,
    backoff: float = 1.0,
    max_bytes: dict[str, int] | None = None,
    progress: ProgressCallback | None = None,
) -> list[Path]:
    """Make `dest`/<name> for each name in `sha256`, verified; return their paths in that order.

    mirrors: base URLs (http, https, file) or folder paths, tried in order. timeout: seconds to connect
    and to wait for the next byte; a mirror that does not answer, or stalls before sending any byte, is
    left at once. Each file gets, per mirror, a deadline of slack + size / min_rate seconds (size: the
    Content-Length, else the cap) covering every attempt and pause. retries: extra attempts per mirror
    after a transient failure (5xx, 429, reset, cut body), pausing backoff * 2**k seconds or what the
    server's Retry-After asks, if that fits the deadline. max_bytes: {name: size cap} (default: the known
    size of MNIST's files, else 64 MiB). progress(bytes_done, bytes_total or None, name) is called as
    bytes arrive.
    Raises UserError for a bad scheme or file name, PipelineError listing every mirror's failure.
    """
    dest = Path(dest)
    bases = [normalize_mirror(m) for m in mirrors]
    if not bases:
        raise UserError("data.mirrors: no mirror to download from")
    sha256 = check_sha256(sha256)
    policy = Policy(timeout=timeout, min_rate=min_rate, slack=slack, retries=retries, backoff=backoff)
    max_bytes = max_bytes or {}
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, digest in sha256.items():
        target, part = dest / name, dest / f".{name}.part"
        part.unlink(missing_ok=True)  # left by a run that was killed
        paths.append(target)
        if target.exists():
            if sha256_of(target) == digest:
                continue
            target.unlink()  # unverified: never leave it in place
        limit = max_bytes.get(name) or KNOWN_SIZES.get(digest, DEFAULT_MAX_BYTES)
        failures = []
        try:
            for base in bases:
                url = base + urllib.parse.quote(name)
                try:
                    _from_mirror(_Download(url, part, name, limit, policy, progress), digest)
                except _NextMirrorError as exc:
                    failures.append(f"{url}: {exc}")
                    part.unlink(missing_ok=True)
                    continue
                os.replace(part, target)
                break
            else:
                raise PipelineError(
                    f"could not download {name} from any mirror: {'; '.join(failures)}; "
                    "check the network, data.mirrors and data.sha256 in params.yaml"
                )
        finally:
            part.unlink(missing_ok=True)
    return paths
