"""An uncompressed (STORED) zip archive whose bytes are set by this module, not by the running Python's zipfile.

np.savez packs its .npy members with zipfile (`ZipFile.open(name, "w", force_zip64=True)` on a seekable file),
and zipfile's bytes for that call changed within Python 3.11 (CPython gh-103861, fixed in May 2023 for 3.12 and
a 3.11 patch release): on 3.11.2 (Debian 12's python3) each local header holds the real sizes and "version needed
to extract" 20, and each central directory entry "version made by" and "version needed" 20; on 3.11.7, 3.12 and
3.13 the local header's two sizes are 0xFFFFFFFF (its zip64 extra field holds them) and those versions are 45.
Same arrays, other file hashes.

This module writes the 3.11.7-3.13 layout field by field, with every field that zipfile takes from its
environment fixed ("made by" Unix, which zipfile writes as MS-DOS on Windows), so an archive's bytes depend only
on its members' names and bytes. All integers little-endian:

- each member: local header (signature PK\\3\\4, version needed 45, flags 0 or 0x800 for a non-ASCII UTF-8 name,
  method 0 = stored, time 00:00:00 and date 1980-01-01 in MS-DOS form, CRC-32, compressed and uncompressed
  size 0xFFFFFFFF, name length, extra length 20), the name, the zip64 extra field (id 1, 16 bytes: uncompressed
  and compressed size as 8-byte integers), the member's bytes;
- the central directory: per member PK\\1\\2, made by 45 on Unix (3), version needed 45, flags, method, time,
  date, CRC-32, both sizes, name length, extra length, comment length 0, disk 0, internal attributes 0, external
  attributes 0o600 << 16 (rw-------), the local header's offset, then the name and, where a size or the offset
  passes 2**31 - 1, a zip64 extra field holding those (sizes first) with 0xFFFFFFFF in their 4-byte places;
- the end record PK\\5\\6 (member count, directory size and offset), preceded by a zip64 end record and locator
  when there are over 65,535 members or the directory's offset or size passes 2**31 - 1 (zipfile's limits).

Needs no numpy: any Python 3.11+ can run it (tests/test_npz.py packs an archive with Debian's python3, which has
none, and compares the bytes). cnn/npz.py writes .npz files with it.
"""

import contextlib
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

ZIP64_LIMIT = (1 << 31) - 1  # zipfile's: a size or offset above it goes into a zip64 extra field
COUNT_LIMIT = (1 << 16) - 1  # members the end record can count
VERSION = 45  # "version needed to extract" of zip64 (APPNOTE 4.4.3), and zipfile's "version made by" with it
MADE_ON_UNIX = 3
FLAG_UTF8 = 0x800
DOS_TIME, DOS_DATE = 0, (1980 - 1980) << 9 | 1 << 5 | 1  # 1980-01-01 00:00:00, zipfile's default timestamp
EXTERNAL_ATTR = 0o600 << 16
MASK32 = 0xFFFFFFFF

LOCAL = struct.Struct("<4s2B4HL2L2H")
ZIP64_SIZES = struct.Struct("<HHQQ")
CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
END64 = struct.Struct("<4sQ2H2L4Q")
END64_LOCATOR = struct.Struct("<4sLQL")
END = struct.Struct("<4s4H2LH")


@dataclass
class _Entry:
    name: bytes
    flags: int
    offset: int
    crc: int = 0
    size: int = 0


def _local_header(entry: _Entry) -> bytes:
    fixed = LOCAL.pack(
        b"PK\x03\x04", VERSION, 0, entry.flags, 0, DOS_TIME, DOS_DATE, entry.crc, MASK32, MASK32,
        len(entry.name), ZIP64_SIZES.size,
    )  # fmt: skip
    return fixed + entry.name + ZIP64_SIZES.pack(1, ZIP64_SIZES.size - 4, entry.size, entry.size)


def _central_record(entry: _Entry) -> bytes:
    big_size, big_offset = entry.size > ZIP64_LIMIT, entry.offset > ZIP64_LIMIT
    wide = [entry.size, entry.size] * big_size + [entry.offset] * big_offset
    size = MASK32 if big_size else entry.size
    offset = MASK32 if big_offset else entry.offset
    extra = struct.pack(f"<HH{len(wide)}Q", 1, 8 * len(wide), *wide) if wide else b""
    fixed = CENTRAL.pack(
        b"PK\x01\x02", VERSION, MADE_ON_UNIX, VERSION, 0, entry.flags, 0, DOS_TIME, DOS_DATE, entry.crc, size, size,
        len(entry.name), len(extra), 0, 0, 0, EXTERNAL_ATTR, offset,
    )  # fmt: skip
    return fixed + entry.name + extra


class _MemberWriter:
    """The file-like object a member's bytes are written to: it passes them on and keeps their CRC-32 and size."""

    def __init__(self, handle: BinaryIO, entry: _Entry) -> None:
        self._handle, self._entry = handle, entry

    def write(self, data: bytes) -> int:
        self._handle.write(data)
        self._entry.crc = zlib.crc32(data, self._entry.crc)
        count = memoryview(data).nbytes
        self._entry.size += count
        return count

    def flush(self) -> None:
        """Flush the archive's file (a file-like object has flush; a writer may call it mid-member)."""
        self._handle.flush()


class StoredZip:
    """Write a zip archive into a seekable binary `handle`, member after member, in the order they are added.

    with StoredZip(handle) as archive:
        with archive.member("x.npy") as out:
            out.write(data)

    Each member's local header is written first with a zero CRC and size, then rewritten in place when the
    member ends (zipfile does the same on a seekable file). The central directory and end record are written
    when the `with` block ends without an exception; after one, the archive is left unfinished (cnn.atomic
    then discards the file).
    """

    def __init__(self, handle: BinaryIO) -> None:
        if not handle.seekable():
            raise ValueError("a zip archive is written into a seekable file (its headers are completed in place)")
        self._handle = handle
        self._entries: list[_Entry] = []
        self._names: set[bytes] = set()

    def __enter__(self) -> "StoredZip":
        return self

    def __exit__(self, kind: type[BaseException] | None, *_) -> None:
        if kind is None:
            self.close()

    @contextlib.contextmanager
    def member(self, name: str) -> Iterator[_MemberWriter]:
        """Start a member called `name` (no NUL character); what is written to the yielded object is its bytes."""
        if not name or "\0" in name:
            raise ValueError(f"zip member name {name!r} must be non-empty and without NUL characters")
        try:
            encoded, flags = name.encode("ascii"), 0
        except UnicodeEncodeError:
            encoded, flags = name.encode("utf-8"), FLAG_UTF8
        if encoded in self._names:
            raise ValueError(f"zip member {name!r} is already in the archive")
        entry = _Entry(encoded, flags, self._handle.tell())
        self._handle.write(_local_header(entry))
        yield _MemberWriter(self._handle, entry)
        end = self._handle.tell()
        self._handle.seek(entry.offset)
        self._handle.write(_local_header(entry))
        self._handle.seek(end)
        self._entries.append(entry)
        self._names.add(encoded)

    def close(self) -> None:
        """Write the central directory and the end record."""
        start = self._handle.tell()
        for entry in self._entries:
            self._handle.write(_central_record(entry))
        end = self._handle.tell()
        count, size = len(self._entries), end - start
        if count > COUNT_LIMIT or start > ZIP64_LIMIT or size > ZIP64_LIMIT:
            self._handle.write(
                END64.pack(b"PK\x06\x06", END64.size - 12, VERSION, VERSION, 0, 0, count, count, size, start)
            )
            self._handle.write(END64_LOCATOR.pack(b"PK\x06\x07", 0, end, 1))
            count, size, start = min(count, 0xFFFF), min(size, MASK32), min(start, MASK32)
        self._handle.write(END.pack(b"PK\x05\x06", 0, 0, count, count, size, start, 0))
