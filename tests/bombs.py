"""Decompression bombs for the tests and bench/bench_bombs.py, written by streaming: a file that inflates to
1.5 GB costs a few MB and well under a second to make, and nothing that size is ever held in memory.

Repetition does it: a gzip file may be many members one after the other, and a deflate block that ends with a
full flush does not depend on what came before, so one compressed MiB is written again and again.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path

import numpy as np

MIB = 1 << 20
GIB_1_5 = 1536 * MIB  # the 1.5 GB


def gzip_repeat(path: Path, head: bytes, block: bytes, times: int) -> Path:
    """A gzip file that inflates to head + block * times, written member by member."""
    member = gzip.compress(block, compresslevel=9)
    with open(path, "wb") as f:
        f.write(gzip.compress(head))
        for _ in range(times):
            f.write(member)
    return path


def csv_gz_bomb(path: Path, inflated: int = GIB_1_5) -> Path:
    """A .csv.gz of rows of zeros, 10 columns, inflating to about `inflated` bytes."""
    row = b"0,0,0,0,0,0,0,0,0,0\n"
    block = row * (MIB // len(row))
    return gzip_repeat(path, b"a,b,c,d,e,f,g,h,i,y\n", block, inflated // len(block))


def idx_header(dims: tuple[int, ...]) -> bytes:
    """An IDX header for unsigned bytes of shape dims."""
    return bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def idx_gz_bomb(path: Path, inflated: int = GIB_1_5) -> Path:
    """A gzip IDX images file whose header promises (and whose stream holds) `inflated` bytes of 1024×1024 images."""
    n = inflated // MIB
    return gzip_repeat(path, idx_header((n, 1024, 1024)), bytes(MIB), n)


def header_line_csv(path: Path, size: int = 100 * MIB) -> Path:
    """A plain CSV whose single header line is `size` bytes long (then one data row)."""
    with open(path, "wb") as f:
        f.write(b"c," * (size // 2 - 1) + b"y\n0\n")
    return path


def _npy_header(shape: tuple[int, ...], descr: str) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _zip(path: Path, members: list[tuple[str, int, int, int, list[bytes]]]) -> None:
    """A zip file from already-deflated members: (name, crc32, compressed size, size, pieces)."""
    central, offset = b"", 0
    with open(path, "wb") as f:
        for name, crc, csize, size, pieces in members:
            raw = name.encode()
            local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, csize, size, len(raw), 0) + raw
            f.write(local)
            for piece in pieces:
                f.write(piece)
            central += (
                struct.pack(
                    "<IHHHHHHIIIHHHHHII",
                    0x02014B50,
                    20,
                    20,
                    0,
                    8,
                    0,
                    0x21,
                    crc,
                    csize,
                    size,
                    len(raw),
                    0,
                    0,
                    0,
                    0,
                    0,
                    offset,
                )
                + raw
            )
            offset += len(local) + csize
        f.write(central)
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), offset, 0))


def _deflated_member(name: str, header: bytes, zero_mib: int) -> tuple[str, int, int, int, list[bytes]]:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    zero_block = block.compress(bytes(MIB)) + block.flush(zlib.Z_FULL_FLUSH)  # independent of what precedes it
    pieces = [c.compress(header) + c.flush(zlib.Z_FULL_FLUSH), *([zero_block] * zero_mib), c.flush()]
    crc = zlib.crc32(header)
    zeros = bytes(MIB)
    for _ in range(zero_mib):
        crc = zlib.crc32(zeros, crc)
    return name, crc, sum(len(p) for p in pieces), len(header) + zero_mib * MIB, pieces


def npz_bomb(path: Path, inflated: int = GIB_1_5, rows: int = 2048) -> Path:
    """An .npz whose x (float64 zeros, `rows` rows) deflates to `inflated` bytes; y is `rows` zeros."""
    width = inflated // (rows * 8)
    x = _deflated_member("x.npy", _npy_header((rows, width), "<f8"), rows * width * 8 // MIB)
    y_bytes = _npy_header((rows,), "<i8") + bytes(rows * 8)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    y_piece = c.compress(y_bytes) + c.flush()
    y = ("y.npy", zlib.crc32(y_bytes), len(y_piece), len(y_bytes), [y_piece])
    _zip(path, [x, y])
    return path
