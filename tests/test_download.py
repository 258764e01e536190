"""pipeline.download against a misbehaving HTTP server on 127.0.0.1: each fault ends in a recovery or one
clear error, and the destination folder holds only verified files afterwards (never a .part file)."""

import hashlib
import re
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline import download, idx, sources
from pipeline.errors import PipelineError, UserError
from tests.http_fixture import FaultyServer, closed_port_url, self_signed_certificate

IMAGES, LABELS = sources.FILES[0], sources.FILES[1]
FAST = {"timeout": 2.0, "retries": 3, "backoff": 0.0}


@pytest.fixture(scope="module")
def payloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Small synthetic IDX gzip files under MNIST's four names (random pixels: ~23 KB each, incompressible)."""
    rng = np.random.default_rng(7)
    folder = tmp_path_factory.mktemp("idx")
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 30, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 10, dtype=np.uint8),
    }
    for name, array in arrays.items():
        idx.write_idx(folder / name, array)
    return {name: (folder / name).read_bytes() for name in arrays}


@pytest.fixture(scope="module")
def sums(payloads: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in payloads.items()}


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "raw"


def assert_only_verified(folder: Path, payloads: dict[str, bytes], expected: set[str]) -> None:
    """`folder` holds exactly the files named in `expected`, each with the right bytes, and nothing else."""
    present = {path.name for path in folder.iterdir()} if folder.exists() else set()
    assert present == expected
    for name in present:
        assert (folder / name).read_bytes() == payloads[name]


def test_success_fetches_every_file_and_reports_progress(payloads, sums, dest):
    seen = []
    with FaultyServer(payloads) as server:
        paths = download.fetch(dest, [server.url], sums, progress=lambda *call: seen.append(call), **FAST)
        assert server.hits() == 4
    assert paths == [dest / name for name in sums]
    assert_only_verified(dest, payloads, set(payloads))
    finals = {name: (done, total) for done, total, name in seen}
    assert finals == {name: (len(data), len(data)) for name, data in payloads.items()}


def test_server_errors_then_success(payloads, sums, dest):
    with FaultyServer(payloads) as server:
        server.script(IMAGES, 500, 503, "ok")
        download.fetch(dest, [server.url], sums, **FAST)
        assert server.hits(IMAGES) == 3
    assert_only_verified(dest, payloads, set(payloads))


def test_retries_are_bounded_and_back_off_exponentially(payloads, sums, dest, monkeypatch):
    pauses = []
    monkeypatch.setattr(download, "_sleep", pauses.append)
    with FaultyServer(payloads) as server:
        server.script(LABELS, *[500] * 10)
        with pytest.raises(PipelineError) as error:
            download.fetch(dest, [server.url], sums, timeout=2.0, retries=3, backoff=0.5)
        assert server.hits(LABELS) == 4
    assert pauses == [0.5, 1.0, 2.0]
    assert f"{server.url}{LABELS}: HTTP 500" in str(error.value)
    assert "4 attempts" in str(error.value)
    assert_only_verified(dest, payloads, {IMAGES})  # fetched before the failing one, and verified


def test_404_goes_to_the_next_mirror_at_once(payloads, sums, dest):
    with FaultyServer(payloads) as first, FaultyServer(payloads) as second:
        first.script(IMAGES, 404, 404, 404)
        download.fetch(dest, [first.url, second.url], sums, **FAST)
        assert (first.hits(IMAGES), second.hits(IMAGES)) == (1, 1)
        assert second.hits() == 1
    assert_only_verified(dest, payloads, set(payloads))


def test_body_cut_off_midway_resumes_with_a_range_request(payloads, sums, dest):
    half = len(payloads[IMAGES]) // 2
    with FaultyServer(payloads) as server:
        server.script(IMAGES, "truncate", "ok")
        download.fetch(dest, [server.url], sums, **FAST)
        assert server.ranges(IMAGES) == [None, f"bytes={half}-"]
    assert_only_verified(dest, payloads, set(payloads))


def test_a_reset_midway_resumes_from_what_arrived(payloads, sums, tmp_path):
    """What a TCP reset lets through before the RST varies (possibly nothing), so the reset is tried a few
    times: each resumed request asks for a range within the half sent, and at least one does resume."""
    half = len(payloads[IMAGES]) // 2
    resumed = []
    for attempt in range(5):
        with FaultyServer(payloads) as server:
            server.script(IMAGES, "reset", "ok")
            download.fetch(tmp_path / str(attempt), [server.url], sums, **FAST)
            requested = server.ranges(IMAGES)
        assert len(requested) == 2 and requested[0] is None
        if requested[1] is not None:
            match = re.fullmatch(r"bytes=(\d+)-", requested[1])
            assert match and 0 < int(match[1]) <= half, requested[1]
            resumed.append(int(match[1]))
        assert_only_verified(tmp_path / str(attempt), payloads, set(payloads))
        if resumed:
            break
    assert resumed, "no reset was resumed with a Range request"


@pytest.mark.parametrize(("fault", "reason"), [("reset", "connection reset"), ("stall", "timed out")])
def test_reset_and_stall_are_reported_when_they_persist(payloads, sums, dest, fault, reason):
    with FaultyServer(payloads, stall=1.0) as server:
        server.script(IMAGES, fault, fault)
        with pytest.raises(PipelineError, match=f"{IMAGES}: {reason}.*gave up after 2 attempts"):
            download.fetch(dest, [server.url], sums, timeout=0.3, retries=1, backoff=0.0)
    assert_only_verified(dest, payloads, set())


def test_server_ignoring_the_range_request_is_restarted_from_zero(payloads, sums, dest):
    with FaultyServer(payloads) as server:
        server.script(IMAGES, "truncate", "ignore-range")
        download.fetch(dest, [server.url], sums, **FAST)
        assert server.ranges(IMAGES) == [None, f"bytes={len(payloads[IMAGES]) // 2}-"]
    assert_only_verified(dest, payloads, set(payloads))


def test_truncated_body_restarts_when_the_server_has_no_ranges(payloads, sums, dest):
    with FaultyServer(payloads, accept_ranges=False) as server:
        server.script(IMAGES, "truncate", "truncate", "ok")
        download.fetch(dest, [server.url], sums, **FAST)
        assert server.ranges(IMAGES) == [None, None, None]
    assert_only_verified(dest, payloads, set(payloads))


def test_truncated_body_on_every_try_fails_and_leaves_no_part_file(payloads, sums, dest):
    with FaultyServer(payloads) as server:
        server.script(IMAGES, *["truncate"] * 5)
        with pytest.raises(PipelineError, match="cut short"):
            download.fetch(dest, [server.url], sums, timeout=2.0, retries=2, backoff=0.0)
        assert server.hits(IMAGES) == 3
    assert_only_verified(dest, payloads, set())


def test_stalled_body_times_out_and_is_retried(payloads, sums, dest):
    with FaultyServer(payloads) as server:
        server.script(LABELS, "stall", "ok")
        download.fetch(dest, [server.url], sums, timeout=0.5, retries=2, backoff=0.0)
        assert server.hits(LABELS) == 2
    assert_only_verified(dest, payloads, set(payloads))


def test_checksum_mismatch_is_a_clear_error_and_leaves_no_file(payloads, sums, dest):
    with FaultyServer(payloads) as server:
        server.script(IMAGES, *["wrong"] * 5)
        with pytest.raises(PipelineError) as error:
            download.fetch(dest, [server.url], sums, **FAST)
        assert server.hits(IMAGES) == 1  # wrong bytes are not retried on the same mirror
    message = str(error.value)
    assert "\n" not in message
    assert IMAGES in message and "checksum mismatch" in message and "data.sha256" in message
    assert_only_verified(dest, payloads, set())


def test_checksum_mismatch_falls_over_to_the_next_mirror(payloads, sums, dest):
    with FaultyServer(payloads) as first, FaultyServer(payloads) as second:
        first.script(IMAGES, "wrong")
        download.fetch(dest, [first.url, second.url], sums, **FAST)
        assert (first.hits(IMAGES), second.hits(IMAGES)) == (1, 1)
    assert_only_verified(dest, payloads, set(payloads))


@pytest.mark.parametrize(
    ("fault", "cap"),
    [("larger", "max_bytes"), ("larger-nolength", "max_bytes"), ("larger-nolength", "default cap")],
)
def test_body_larger_than_expected_is_cut_off(payloads, sums, dest, monkeypatch, fault, cap):
    sizes = {name: len(data) for name, data in payloads.items()}
    if cap == "default cap":
        monkeypatch.setattr(download, "DEFAULT_MAX_BYTES", max(sizes.values()))
    with FaultyServer(payloads) as first, FaultyServer(payloads) as second:
        first.script(IMAGES, fault)
        second.script(IMAGES, fault)
        with pytest.raises(PipelineError) as error:
            download.fetch(dest, [first.url, second.url], sums, max_bytes=sizes if cap == "max_bytes" else None, **FAST)
        assert first.hits(IMAGES) == second.hits(IMAGES) == 1
    assert str(error.value).count(f"more than the expected {sizes[IMAGES]}") == 2
    assert_only_verified(dest, payloads, set())


def test_dead_first_mirror_falls_over_to_the_second(payloads, sums, dest):
    dead = closed_port_url()
    with FaultyServer(payloads) as server:
        download.fetch(dest, [dead, server.url], sums, **FAST)
        assert server.hits() == 4
    assert_only_verified(dest, payloads, set(payloads))


def test_every_mirror_failing_gives_one_error_listing_each(payloads, sums, dest):
    dest.mkdir()
    (dest / f".{IMAGES}.part").write_bytes(b"left by a killed run")
    (dest / IMAGES).write_bytes(b"not verified")
    dead = closed_port_url()
    with FaultyServer(payloads) as failing, FaultyServer({}) as empty:
        failing.script(IMAGES, *[502] * 5)
        with pytest.raises(PipelineError) as error:
            download.fetch(dest, [failing.url, empty.url, dead], sums, timeout=2.0, retries=1, backoff=0.0)
    parts = str(error.value).split("; ")
    assert f"{failing.url}{IMAGES}: HTTP 502" in parts[0]
    assert parts[1].startswith(f"{empty.url}{IMAGES}: HTTP 404")
    assert parts[2].startswith(f"{dead}{IMAGES}: connection refused")
    assert type(error.value) is PipelineError
    assert_only_verified(dest, payloads, set())


def test_verified_file_is_not_fetched_again_and_a_bad_one_is_replaced(payloads, sums, dest):
    with FaultyServer(payloads) as server:
        download.fetch(dest, [server.url], sums, **FAST)
    (dest / LABELS).write_bytes(b"corrupted since")
    with FaultyServer(payloads) as server:
        download.fetch(dest, [server.url], sums, **FAST)
        assert [seen.name for seen in server.requests] == [LABELS]
    assert_only_verified(dest, payloads, set(payloads))


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/mnist/", "gopher://example.org/", "data:text/plain,x"])
def test_unsupported_scheme_is_refused(payloads, sums, dest, url):
    with pytest.raises(UserError, match="scheme"):
        download.fetch(dest, [url], sums, **FAST)
    with pytest.raises(UserError, match=r"data\.mirrors"):
        sources.resolve_source("mnist", [url], None)
    assert not dest.exists()


def test_redirect_to_another_scheme_is_refused(payloads, sums, dest):
    with FaultyServer(payloads) as server:
        server.script(IMAGES, "redirect:ftp://127.0.0.1/x.gz")
        with pytest.raises(PipelineError, match="redirected to a ftp:// URL, refused"):
            download.fetch(dest, [server.url], sums, **FAST)
    assert_only_verified(dest, payloads, set())


def test_file_name_that_escapes_dest_is_refused(payloads, sums, dest):
    with pytest.raises(UserError, match="plain file name"):
        download.fetch(dest, ["http://127.0.0.1:1/"], {"../evil.gz": sums[IMAGES]}, **FAST)


def test_folder_mirror_copies_and_verifies(payloads, sums, dest, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, data in payloads.items():
        (mirror / name).write_bytes(data if name != LABELS else b"tampered")
    second = tmp_path / "second"
    second.mkdir()
    (second / LABELS).write_bytes(payloads[LABELS])
    download.fetch(dest, [str(mirror), second.as_uri()], sums, **FAST)
    assert_only_verified(dest, payloads, set(payloads))


def test_sample_source_is_the_shipped_folder_with_its_checksums(tmp_path):
    mirrors, sha256 = sources.resolve_source("sample", None, None)
    assert mirrors == [sources.SAMPLE_DIR.as_uri() + "/"]
    assert list(sha256) == list(sources.FILES)
    paths = download.fetch(tmp_path / "raw", mirrors, sha256)
    for path in paths:
        assert path.read_bytes() == (sources.SAMPLE_DIR / path.name).read_bytes()
    images, labels = idx.read_split(tmp_path / "raw", "t10k")
    assert images.shape == (1000, 28, 28) and np.bincount(labels).tolist() == [100] * 10


def test_resolve_source_defaults_and_overrides(tmp_path):
    assert sources.resolve_source("mnist", None, None) == (sources.MNIST_MIRRORS, sources.MNIST_SHA256)
    upper = {name: digest.upper() for name, digest in sources.MNIST_SHA256.items()}
    mirrors, sha256 = sources.resolve_source("mnist", ["http://mirror.local/mnist", str(tmp_path)], upper)
    assert mirrors == ["http://mirror.local/mnist/", tmp_path.as_uri() + "/"]
    assert sha256 == sources.MNIST_SHA256
    with pytest.raises(UserError, match=r"data\.source.*'kaggle'.*sample, mnist"):
        sources.resolve_source("kaggle", None, None)
    with pytest.raises(UserError, match=r"data\.sha256: no checksum for t10k-labels-idx1-ubyte\.gz"):
        sources.resolve_source("mnist", None, dict(list(sources.MNIST_SHA256.items())[:3]))
    with pytest.raises(UserError, match=r"data\.sha256: the checksum of"):
        sources.resolve_source("mnist", None, {**sources.MNIST_SHA256, IMAGES: "abc"})
    with pytest.raises(UserError, match=r"data\.mirrors: empty"):
        sources.resolve_source("sample", [], None)


# ------------------------------------------------------------------------------------ deadlines and faults


def test_wrong_content_range_start_is_not_appended(payloads, sums, dest):
    """A 206 whose Content-Range starts one byte early: the partial copy is dropped, not spliced."""
    with FaultyServer(payloads) as server:
        server.script(IMAGES, "truncate", "wrong-range", "ok")
        download.fetch(dest, [server.url], sums, **FAST)
        half = len(payloads[IMAGES]) // 2
        assert server.ranges(IMAGES) == [None, f"bytes={half}-", None]  # after the bad range: from zero
    assert_only_verified(dest, payloads, set(payloads))


def test_drip_feeding_mirror_is_left_at_its_deadline(payloads, sums, dest):
    """One byte every 0.2 s: no read ever times out, but the file's deadline (slack + size / min_rate) ends it."""
    with FaultyServer(payloads, drip=0.2) as slow, FaultyServer(payloads) as good:
        slow.script(LABELS, "drip")
        start = time.monotonic()
        download.fetch(dest, [slow.url, good.url], sums, min_rate=10_000, slack=1.5, timeout=1.0, backoff=0.0)
        elapsed = time.monotonic() - start
        assert (slow.hits(LABELS), good.hits(LABELS)) == (1, 1)
    assert elapsed < 5, elapsed  # the deadline of a ~40-byte file at 10 kB/s is the 1.5 s slack
    assert_only_verified(dest, payloads, set(payloads))


def test_drip_on_every_mirror_ends_in_one_error_naming_the_rate(payloads, sums, dest):
    with FaultyServer(payloads, drip=0.2) as slow:
        slow.script(LABELS, "drip")
        with pytest.raises(PipelineError, match=r"too slow: \d+ of \d+ bytes in \d+ s, below the minimum of 10000"):
            download.fetch(dest, [slow.url], sums, min_rate=10_000, slack=1.0, timeout=1.0, backoff=0.0)
    assert_only_verified(dest, payloads, {IMAGES})


def test_mirror_stalling_after_the_headers_costs_one_timeout(payloads, sums, dest):
    with FaultyServer(payloads, stall=10.0) as stalled, FaultyServer(payloads) as good:
        stalled.script(IMAGES, "stall-headers", "stall-headers")
        start = time.monotonic()
        download.fetch(dest, [stalled.url, good.url], sums, timeout=0.5, backoff=0.0)
        elapsed = time.monotonic() - start
        assert stalled.hits(IMAGES) == 1  # no byte came: not retried on the same mirror
    assert elapsed < 3, elapsed
    assert_only_verified(dest, payloads, set(payloads))


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_within_the_deadline(payloads, sums, dest, monkeypatch, status):
    pauses = []
    monkeypatch.setattr(download, "_sleep", pauses.append)
    with FaultyServer(payloads) as server:
        server.script(LABELS, f"retry-after:{status}:7", "ok")
        download.fetch(dest, [server.url], sums, timeout=2.0, slack=30.0, backoff=0.5)
        assert server.hits(LABELS) == 2
    assert pauses == [7.0]  # the server's 7 s, not our 0.5 s backoff
    assert_only_verified(dest, payloads, set(payloads))


def test_retry_after_past_the_deadline_goes_to_the_next_mirror(payloads, sums, dest, monkeypatch):
    pauses = []
    monkeypatch.setattr(download, "_sleep", pauses.append)
    with FaultyServer(payloads) as busy, FaultyServer(payloads) as good:
        busy.script(LABELS, "retry-after:429:3600")
        download.fetch(dest, [busy.url, good.url], sums, timeout=2.0, slack=30.0, backoff=0.5)
        assert (busy.hits(LABELS), good.hits(LABELS)) == (1, 1)
    assert pauses == []
    with FaultyServer(payloads) as busy:
        busy.script(LABELS, "retry-after:429:3600")
        with pytest.raises(PipelineError, match=r"HTTP 429.*asked to retry after 3600 s, past this file's deadline"):
            download.fetch(dest.parent / "again", [busy.url], sums, timeout=2.0, slack=30.0)
    assert not (dest.parent / "again" / LABELS).exists()


def test_bad_certificate_falls_over_to_the_next_mirror_with_the_reason(payloads, sums, dest, tmp_path):
    tls = self_signed_certificate(tmp_path)
    with FaultyServer(payloads, tls=tls) as https, FaultyServer(payloads) as good:
        assert https.url.startswith("https://127.0.0.1:")
        download.fetch(dest, [https.url, good.url], sums, **FAST)
        assert good.hits() == 4
    assert_only_verified(dest, payloads, set(payloads))
    with FaultyServer(payloads, tls=tls) as https:
        with pytest.raises(PipelineError) as error:
            download.fetch(tmp_path / "again", [https.url], sums, **FAST)
    assert f"{https.url}{IMAGES}: bad TLS certificate (self-signed certificate)" in str(error.value)
