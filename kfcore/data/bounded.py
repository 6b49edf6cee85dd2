"""Size-aware reading: what a file will take once decompressed, known before anything that size is allocated.

A 1.5 MB upload can deflate to 1.5 GB; these readers look at headers (an .npy member's shape and dtype) or
stream in fixed chunks (gzip) so a bomb is measured, never materialised. They report sizes; kfcore.data
turns them into refusals with the limit and what to do.
"""

from __future__ import annotations

import codecs
import gzip
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np

CHUNK = 1 << 20  # bytes decompressed per step: memory stays at a few MB whatever the file promises


def open_text(path: Path, gzipped: bool) -> BinaryIO:
    """The file's bytes as a stream, gunzipped on the fly when gzipped."""
    return cast(BinaryIO, gzip.open(path, "rb")) if gzipped else open(path, "rb")


def chunks(path: Path, gzipped: bool, limit: int | None = None) -> Iterator[bytes]:
    """The (decompressed) content in CHUNK pieces, stopping after the piece that goes past `limit` bytes."""
    total = 0
    with open_text(path, gzipped) as f:
        while piece := f.read(CHUNK):
            yield piece
            total += len(piece)
            if limit is not None and total > limit:
                return


def head(path: Path, gzipped: bool, n: int) -> bytes:
    """At most the first n (decompressed) bytes."""
    with open_text(path, gzipped) as f:
        return f.read(n)


def inflated_size(path: Path, gzipped: bool, limit: int) -> int:
    """The content's size in bytes, counted by streaming; counting stops once it is past `limit`
    (so a result over `limit` means "more than limit", not the exact size)."""
    if not gzipped:
        return path.stat().st_size
    return sum(len(piece) for piece in chunks(path, gzipped, limit))


def first_non_utf8(path: Path, gzipped: bool, limit: int | None = None) -> tuple[int, int] | None:
    """(line number, byte) of the first byte that is not UTF-8, streaming; None when all of it decodes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, pending = 1, b""  # pending: the bytes of an unfinished character carried into the next chunk
    for piece in chunks(path, gzipped, limit):
        data = pending + piece
        try:
            decoder.decode(piece)
        except UnicodeDecodeError as e:
            # e.start is relative to the decoder's buffered bytes plus this piece, i.e. to `data`.
            return line + data.count(b"\n", 0, e.start), data[e.start]
        kept = len(decoder.getstate()[0])
        line += data.count(b"\n", 0, len(data) - kept)
        pending = data[len(data) - kept :] if kept else b""
    return None


def npy_header(f: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from an .npy stream's header, reading nothing of the data; ValueError if it is not .npy."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    else:  # 2.0 and 3.0 share the layout (3.0 allows UTF-8 field names, read as Latin-1 here)
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    return tuple(int(s) for s in shape), np.dtype(dtype)


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype] | None]:
    """Every member of an .npz archive by its array name: (shape, dtype), or None for a member that is not .npy.

    Raises zipfile.BadZipFile / OSError for a damaged archive, FileNotFoundError for a missing one.
    """
    found: dict[str, tuple[tuple[int, ...], np.dtype] | None] = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            key = name[:-4] if name.endswith(".npy") else name
            with archive.open(name) as member:
                try:
                    found[key] = npy_header(cast(BinaryIO, member))
                except ValueError:
                    found[key] = None
    return found


def idx_ndim(head: bytes) -> int | None:
    """The number of dimensions an IDX file's first bytes declare (0, 0, a type code, the count; gzipped or not),
    None when they are not an IDX header. kfcore.data.read_idx checks the whole header when it reads the file."""
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, 4)  # at most 4 bytes: never a bomb
        except zlib.error:
            return None
    ok = len(head) >= 4 and head[:2] == b"\0\0" and head[2] in (0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E) and head[3] > 0
    return head[3] if ok else None
