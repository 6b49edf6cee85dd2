"""Class-folder ZIPs for the tests: real PNG and JPEG files made with Pillow, plus hostile members."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np


def image_bytes(shape: tuple[int, int], value: int, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    """An image file of height × width filled with one value (a gradient on top, so resizing has work to do)."""
    from PIL import Image

    h, w = shape
    pixels = np.full((h, w, 3), value, np.uint8)
    pixels[: h // 4] = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    im = Image.fromarray(pixels).convert(mode)
    out = io.BytesIO()
    im.save(out, fmt)
    return out.getvalue()


def class_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def pets(n: int = 6) -> dict[str, bytes]:
    """Dark cats (PNG, 40×30) and light dogs (JPEG, 50×80), n of each."""
    members = {f"cats/{i}.png": image_bytes((30, 40), 20 + i) for i in range(n)}
    members |= {f"dogs/{i}.jpg": image_bytes((80, 50), 230 - i, "JPEG") for i in range(n)}
    return members


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width × height pixels but whose data is a few bytes: a pixel bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def deflate_bomb(path: Path, name: str, inflated: int, extra: dict[str, bytes] | None = None) -> Path:
    """A ZIP with a member of `inflated` zero bytes (written in 1 MiB pieces: never held whole)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in (extra or {}).items():
            archive.writestr(member, data)
        with archive.open(name, "w", force_zip64=True) as f:
            block = bytes(1 << 20)
            for _ in range(inflated >> 20):
                f.write(block)
    return path
