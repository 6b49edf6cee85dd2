"""How a spec names an uploaded file: by a reference inside the store's uploads folder, never a server path.

The dashboard keeps an upload as <store>/uploads/<sha256 prefix>/<name> and puts "<sha256 prefix>/<name>" in
the spec's data.path. Share links, run specs, exported scripts and messages carry that reference (or the bare
file name), so they work on any copy of the store and show nothing of the server's disk; kfcore resolves it
against the store's uploads folder just before reading. Who may read which upload is kfcore.runs.limits'.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from kfcore.spec import DataSpec

# The folder is a sha256 prefix, the name what ui.datasets.save_upload keeps: no "..", no other folder.
UPLOAD_REF = re.compile(r"[0-9a-f]{16}/[A-Za-z0-9_-]{1,60}\.(?:csv|csv\.gz|npz|zip|idx|idx\.gz)")
FILE_FIELDS = ("path", "images", "labels")


def files(data: DataSpec) -> list[str]:
    """The file paths or upload references a DataSpec reads (none for built-in sets and Keras downloads)."""
    return [v for v in (getattr(data, k) for k in FILE_FIELDS) if v]


def ref_of(path: str, uploads_dir: str | Path) -> str | None:
    """The upload `path` names: itself when it is a reference, or the reference of an absolute path inside the
    uploads folder (a spec from before references); None for any other path."""
    if UPLOAD_REF.fullmatch(path):
        return path
    if not Path(path).is_absolute():
        return None
    try:
        rel = Path(path).resolve().relative_to(Path(uploads_dir).resolve()).as_posix()
    except (ValueError, OSError):
        return None
    return rel if UPLOAD_REF.fullmatch(rel) else None


def as_refs(data: DataSpec, uploads_dir: str | Path) -> DataSpec:
    """`data` with every upload named by its reference (an old spec's absolute upload paths become references)."""
    refs = {k: ref_of(v, uploads_dir) for k in FILE_FIELDS if (v := getattr(data, k))}
    changes: dict[str, Any] = {k: ref for k, ref in refs.items() if ref is not None}
    return dataclasses.replace(data, **changes)


def local_path(path: str, uploads_dir: str | Path) -> Path:
    """Where the file `path` names is on this machine: a reference inside the uploads folder, any other path as is."""
    return Path(uploads_dir) / path if UPLOAD_REF.fullmatch(path) else Path(path)


def resolve(data: DataSpec, uploads_dir: str | Path) -> DataSpec:
    """`data` ready for kfcore.data.load_dataset: each upload reference replaced by the file's path."""
    changes: dict[str, Any] = {k: str(local_path(v, uploads_dir)) for k in FILE_FIELDS if (v := getattr(data, k))}
    return dataclasses.replace(data, **changes)
