"""Images by folder: a ZIP with one folder per class (cats/1.jpg, dogs/2.png) read as a labelled image set.

Every image is centre-cropped to a square, resized to the side the person picked and made grey or colour, so
photos of any size and shape train together. The archive is the user's, so it is read as hostile:
- its directory is counted from the end record before it is parsed (thousands of tiny files cost memory to list);
- members are judged by the sizes the directory declares before one is decompressed (a bomb declares gigabytes,
  or a ratio no image file has), and read through zipfile, which never returns more than a member declares;
- names are never used as paths (nothing is extracted): absolute names and ".." are refused and counted anyway;
- nested archives, system files and non-images are skipped and counted, and said so;
- an image's width and height come from its header; one with more pixels than MAX_IMAGE_PIXELS is never decoded.
load_image_folder is the "images" source's loader; the dashboard parses uploads in kfcore.data.sandbox's
memory-capped child.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from kfcore.data.dataset import DataError, Dataset, as_images, check_size, finish
from kfcore.runs.limits import Limits
from kfcore.spec import DEFAULT_IMAGE_SIZE, IMAGE_SIZES, DataSpec

MAX_MEMBERS = 20_000  # entries in one archive's directory
MAX_IMAGE_BYTES = 16 << 20  # one image file as the directory declares it
MAX_TOTAL_BYTES = 1 << 30  # all image files together, declared
MAX_RATIO = 100  # declared / compressed size: images are compressed already, so far above this is a bomb
BOMB_FLOOR = 1 << 20  # ... for members that declare more than this (a tiny blank PNG may compress well)
MAX_IMAGE_PIXELS = 40_000_000  # width × height read from an image's header (a 40 MP photo decodes to 120 MB)
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
ARCHIVES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")
_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"

# Why members were skipped, worded for "skipped 3 <reason>".
UNSAFE = "files with an absolute path or '..' in their name (never used as paths)"
SYSTEM = "hidden or system files (__MACOSX, .DS_Store, …)"
NESTED = "archives inside the archive (not opened: unpack them into class folders)"
NOT_IMAGE = f"files that are not images ({', '.join(FORMATS)})"
ROOT = "images outside a class folder"
TOO_BIG = f"image files over {MAX_IMAGE_BYTES >> 20} MB"
TOO_MANY_PIXELS = f"images of more than {MAX_IMAGE_PIXELS // 1_000_000} million pixels"
DAMAGED = "damaged images that could not be decoded"
ENCRYPTED = "password-protected files"


@dataclass
class ImageFolder:
    images: np.ndarray  # uint8 (N, size, size, channels)
    labels: np.ndarray  # int64 index into classes
    classes: list[str]  # the class folders, sorted
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> how many members

    def notes(self) -> list[str]:
        """What reading skipped, for the Data page."""
        return [f"skipped {n:,} {reason}" for reason, n in self.skipped.items() if n]


def zip_entries(path: Path) -> int:
    """How many entries the archive's end record declares, read from its last 64 KB (its directory is not parsed).

    Raises DataError when there is no end record: the file is not a ZIP archive, or it is cut short."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(0, size - (1 << 16) - 22))
        tail = f.read()
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) - at < 22:
            raise DataError(f"{path.name} is not a ZIP archive (or it is cut short); zip the class folders again")
        count = struct.unpack("<H", tail[at + 10 : at + 12])[0]
        locator = tail.rfind(_ZIP64_LOCATOR, 0, at)
        if count == 0xFFFF and locator >= 0:  # ZIP64: the count lives in the record the locator points to
            offset = struct.unpack("<Q", tail[locator + 8 : locator + 16])[0]
            f.seek(offset + 32)
            count = struct.unpack("<Q", f.read(8).ljust(8, b"\0"))[0]
    return count


def class_of(names: list[str]) -> list[str | None]:
    """The class folder of each image path: its first folder once the folders every path shares are dropped
    (a zipped 'animals/' around 'cats/' and 'dogs/'); None for an image outside every class folder."""
    parts = [PurePosixPath(n).parts[:-1] for n in names]
    while parts and all(parts) and len({p[0] for p in parts}) == 1 and any(len(p) >= 2 for p in parts):
        parts = [p[1:] for p in parts]
    return [p[0] if p else None for p in parts]


def _unsafe(name: str) -> bool:
    return name.startswith("/") or bool(re.match(r"[A-Za-z]:", name)) or ".." in PurePosixPath(name).parts


def _decode(data: bytes, size: int, color: bool) -> np.ndarray | str:
    """The image as a uint8 (size, size, channels) array, or the reason it was skipped."""
    from PIL import Image, ImageOps

    mode = "RGB" if color else "L"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as opened:
                if opened.width * opened.height > MAX_IMAGE_PIXELS:  # from the header: nothing is decoded yet
                    return TOO_MANY_PIXELS
                opened.draft(mode, (size, size))  # JPEG decodes straight at a fraction of its size
                im = ImageOps.exif_transpose(opened)  # a phone's portrait photo stands upright
                if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                    im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA"))
                im = ImageOps.fit(im.convert(mode), (size, size), Image.Resampling.BILINEAR)
                pixels = np.asarray(im, np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return TOO_MANY_PIXELS
    except (OSError, ValueError, SyntaxError, struct.error, EOFError, zlib.error):
        return DAMAGED  # Pillow's UnidentifiedImageError is an OSError
    return pixels.reshape(size, size, 3 if color else 1)


def load_image_folder(spec: DataSpec, limits: Limits) -> Dataset:
    """The "images" source: the ZIP at spec.path read at spec.image_size, grey or colour."""
    path, size, color = Path(spec.path or ""), spec.image_size or DEFAULT_IMAGE_SIZE, bool(spec.color)
    found = read_zip(path, size, color, limits)
    x, _ = as_images(found.images, None, [])
    description = (
        f"image folders in {path.name}: {len(x):,} {'colour' if color else 'grey'} images resized to "
        f"{size}×{size}, {len(found.classes)} classes"
    )
    labels = np.array(found.classes)[found.labels]  # the folder names: classes in the order of any text labels
    return finish(spec, spec.name or path.stem, description, x, labels, "the class folders", notes=found.notes())


def picture(content: bytes, size: int, color: bool) -> np.ndarray:
    """One picture (a file's bytes) made as the ZIP's images were: uint8 (size, size, channels); DataError when it
    cannot be (Try it on a class-folder run feeds the model exactly what training fed it)."""
    pixels = _decode(content, size, color)
    if isinstance(pixels, str):
        why = (
            f"it has more than {MAX_IMAGE_PIXELS // 1_000_000} million pixels"
            if pixels == TOO_MANY_PIXELS
            else "it is damaged or not an image"
        )
        raise DataError(f"the file cannot be used: {why}; use a {', '.join(FORMATS)} picture")
    return pixels


def read_zip(path: str | Path, size: int, color: bool, limits: Limits | None = None) -> ImageFolder:
    """The labelled images of a class-folder ZIP, resized to size × size, grey or colour (RGB).

    With limits, the images' count and memory are checked against them before any image is decoded; DataError
    says what is wrong with the archive and what to do."""
    path = Path(path)
    if size not in IMAGE_SIZES:
        raise DataError(f"image size {size} is not offered; choose one of {', '.join(map(str, IMAGE_SIZES))}")
    try:
        entries = zip_entries(path)
    except FileNotFoundError:
        raise DataError(f"the file {path.name} does not exist; upload it again") from None
    if entries > MAX_MEMBERS:
        raise DataError(
            f"{path.name} lists {entries:,} files, more than the {MAX_MEMBERS:,} one upload may hold; "
            "upload fewer images (a few hundred per class train well at these sizes)"
        )
    skipped: Counter[str] = Counter()
    try:
        with zipfile.ZipFile(path) as archive:
            members = _image_members(path.name, archive.infolist(), skipped)
            classes_of = class_of([m.filename for m in members])
            kept = [(c, m) for c, m in zip(classes_of, members, strict=True) if c is not None]
            skipped[ROOT] += len(members) - len(kept)
            classes = sorted({c for c, _ in kept})
            _check_classes(path.name, classes, skipped)
            channels = 3 if color else 1
            if limits is not None:  # uint8 here, then the float32 copy the model trains on
                check_size(path.name, len(kept), len(kept) * size * size * channels * (1 + 4), limits)
            images = np.empty((len(kept), size, size, channels), np.uint8)
            labels = np.empty(len(kept), np.int64)
            n = 0
            for cls, member in sorted(kept, key=lambda cm: (cm[0], cm[1].filename)):
                try:
                    data = archive.read(member)
                except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError):
                    skipped[DAMAGED] += 1
                    continue
                pixels = _decode(data, size, color)
                if isinstance(pixels, str):
                    skipped[pixels] += 1
                    continue
                images[n], labels[n] = pixels, classes.index(cls)
                n += 1
    except zipfile.BadZipFile as e:
        raise DataError(f"{path.name} is not a readable ZIP archive ({e}); zip the class folders again") from None
    images, labels = images[:n], labels[:n]
    present = sorted(set(labels.tolist()))
    if len(present) < 2:
        _check_classes(path.name, [classes[i] for i in present], skipped)
    if len(present) < len(classes):  # a class whose every image was skipped: renumber the ones that are left
        labels = np.searchsorted(present, labels).astype(np.int64)
        classes = [classes[i] for i in present]
    return ImageFolder(images, labels, classes, skipped)


def _image_members(name: str, infos: list[zipfile.ZipInfo], skipped: Counter[str]) -> list[zipfile.ZipInfo]:
    """The members that may be images, judged by their names and declared sizes alone; the rest counted."""
    members: list[zipfile.ZipInfo] = []
    total = 0
    for info in infos:
        if info.is_dir():
            continue
        member = info.filename.replace("\\", "/")
        parts = PurePosixPath(member).parts
        suffix = PurePosixPath(member).suffix.lower()
        if _unsafe(member):
            skipped[UNSAFE] += 1
        elif any(p.startswith(".") or p == "__MACOSX" for p in parts):
            skipped[SYSTEM] += 1
        elif suffix in ARCHIVES:
            skipped[NESTED] += 1
        elif suffix not in EXTENSIONS:
            skipped[NOT_IMAGE] += 1
        elif info.flag_bits & 0x1:
            skipped[ENCRYPTED] += 1
        elif info.file_size > BOMB_FLOOR and info.file_size > MAX_RATIO * max(1, info.compress_size):
            raise DataError(
                f"{name} is refused: {member[:80]!r} declares {info.file_size:,} bytes once decompressed from "
                f"{info.compress_size:,} (more than {MAX_RATIO}× smaller), which no image file is: a decompression "
                "bomb. Zip the original image files again"
            )
        elif info.file_size > MAX_IMAGE_BYTES:
            skipped[TOO_BIG] += 1
        else:
            total += info.file_size
            members.append(info)
    if total > MAX_TOTAL_BYTES:
        raise DataError(
            f"{name} holds {total / 2**20:,.0f} MB of image files once decompressed, more than the "
            f"{MAX_TOTAL_BYTES >> 20:,} MB one upload may; upload fewer or smaller images"
        )
    return members


def _check_classes(name: str, classes: list[str], skipped: Counter[str]) -> None:
    if len(classes) >= 2:
        return
    why = "; ".join(f"skipped {n:,} {reason}" for reason, n in skipped.items() if n)
    found = f"only the class folder {classes[0]!r} has images" if classes else "no images were found"
    raise DataError(
        f"{name}: {found}{f' ({why})' if why else ''}. A classifier needs at least two classes: put each class's "
        "images in its own folder (cats/1.jpg, dogs/2.png) and zip the folders together"
    )
