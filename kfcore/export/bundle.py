"""Run bundles: one ZIP that carries a run to another KF Studio, where it is imported as a read-only run to fork.

A bundle holds manifest.json (the run's name, times, hardware, info, test results), spec.json,
history.json, evaluation.json, model.keras (with recipe.json and predictions.npz when the run saved
them), train.py, card.html, and the uploaded data file the run trained on under data/<upload reference>.

A bundle is a file from anywhere, so reading one is as careful as reading an upload: the archive's size is
checked before it is opened, member names are an allowlist (nothing else, so no path can leave the store),
every member's size is checked from its header and again while it is read (a header can lie), a member that
inflates too far is refused as a bomb, and JSON goes through the same bounded parser as specs. Pure: no
TensorFlow (the model file is loaded later, in a worker, with Keras' safe mode).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kfcore.data import uploads
from kfcore.data.recipe import RECIPE_FILE
from kfcore.present.samples import PREDICTIONS_FILE
from kfcore.runs.store import RunRecord, RunStore
from kfcore.spec import MAX_JSON_DEPTH, RunSpec, SpecError, json_depth

BUNDLE_FORMAT = "kfstudio-run-bundle"
BUNDLE_VERSION = 1
MAX_BUNDLE_MB = 512  # the archive on disk; a hosted server's upload limit, when lower, applies instead
MAX_INFLATED_MB = 1024  # all members together, once decompressed
MAX_JSON_MB = 64  # one JSON member (a long history, an evaluation with its decision boundary)
MAX_RATIO = 200  # decompressed / compressed for a member over 1 MB: past it, it is a bomb, not a model
_JSON_MEMBERS = ("manifest.json", "spec.json", "history.json", "evaluation.json")
_FILE_MEMBERS = ("model.keras", RECIPE_FILE, PREDICTIONS_FILE, "train.py", "card.html")
_REQUIRED = ("manifest.json", "spec.json", "history.json", "model.keras")
_DATA = "data/"
_MANIFEST_FIELDS = ("id", "name", "status", "created", "started", "finished", "hardware", "info", "test")


class BundleError(ValueError):
    """A bundle that cannot be imported; the message names the file and what is wrong with it."""


def bundle_name(record: RunRecord) -> str:
    return f"kf-run-{record.id}.zip"


def write_bundle(
    path: Path,
    record: RunRecord,
    history: Sequence[dict[str, Any]],
    script: str | None,
    data_files: Sequence[Path],
    card: str,
) -> Path:
    """Write `record` (with its evaluation) as a bundle at `path`. data_files: the files its script reads; those
    that are uploads travel under their upload reference, so the importing store can train a fork on them."""
    model = Path(str(record.model_path))
    manifest = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "exported": time.time(),
        **{k: getattr(record, k) for k in _MANIFEST_FIELDS},
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        archive.writestr("spec.json", json.dumps(record.spec))
        archive.writestr("history.json", json.dumps(list(history)))
        archive.writestr("evaluation.json", json.dumps(record.evaluation or {}))
        for name in _FILE_MEMBERS[:3]:
            if (model.parent / name).is_file():
                archive.write(model.parent / name, arcname=name)
        if script is not None:
            archive.writestr("train.py", script)
        archive.writestr("card.html", card)
        for f in data_files:
            ref = _upload_ref(f)
            if ref is not None:
                archive.write(f, arcname=_DATA + ref)
    return path


def _upload_ref(path: Path) -> str | None:
    """The upload reference of a file in a store's uploads folder (<sha256 prefix>/<name>), else None."""
    ref = f"{path.parent.name}/{path.name}"
    return ref if uploads.UPLOAD_REF.fullmatch(ref) else None


def _limit_bytes(max_upload_mb: int | None) -> int:
    return min(MAX_BUNDLE_MB, max_upload_mb or MAX_BUNDLE_MB) * 2**20


def read_bundle(path: Path, max_upload_mb: int | None = None) -> dict[str, Any]:
    """The members of a bundle, checked: JSON members parsed, files as bytes, data files by upload reference
    ({"data": {ref: bytes}}). Raises BundleError saying what is wrong and what to do."""
    name = path.name
    try:
        size = path.stat().st_size
    except OSError as e:
        raise BundleError(f"cannot read {name}: {e.strerror or e}") from None
    limit = _limit_bytes(max_upload_mb)
    if size > limit:
        raise BundleError(
            f"{name} is {size / 2**20:,.1f} MB, over the {limit // 2**20:,} MB a bundle may be here; "
            "export the run again, or train it here from its spec"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            return _members(name, archive)
    except zipfile.BadZipFile as e:
        raise BundleError(
            f"{name} is not a KF Studio bundle: not a readable ZIP file ({e}); export it again with "
            "python -m kfcore export RUN_ID --format bundle"
        ) from None


def _members(name: str, archive: zipfile.ZipFile) -> dict[str, Any]:
    infos = archive.infolist()
    seen: set[str] = set()
    total = 0
    for info in infos:
        member = info.filename
        if member.startswith("/") or ".." in member.split("/") or "\\" in member:
            raise BundleError(
                f"{name} holds a file whose path leaves the bundle ({member!r}): it was not made by "
                "KF Studio and is not imported"
            )
        if member not in _JSON_MEMBERS + _FILE_MEMBERS and not (
            member.startswith(_DATA) and uploads.UPLOAD_REF.fullmatch(member[len(_DATA) :])
        ):
            raise BundleError(f"{name} holds {member!r}, which no KF Studio bundle has: it is not imported")
        if member in seen:
            raise BundleError(f"{name} holds {member!r} twice: it is not imported")
        seen.add(member)
        if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise BundleError(
                f"{name}: {member} would inflate {info.file_size / max(info.compress_size, 1):,.0f}-fold "
                f"(to {info.file_size / 2**20:,.0f} MB), as a ZIP bomb does: it is not imported"
            )
        total += info.file_size
    if total > MAX_INFLATED_MB * 2**20:
        raise BundleError(
            f"{name} would inflate to {total / 2**20:,.0f} MB, over the {MAX_INFLATED_MB:,} MB a bundle "
            "may hold: it is not imported"
        )
    missing = [m for m in _REQUIRED if m not in seen]
    if missing:
        raise BundleError(
            f"{name} is not a KF Studio bundle: it lacks {', '.join(missing)}; export it again with "
            "python -m kfcore export RUN_ID --format bundle"
        )
    found: dict[str, Any] = {"data": {}}
    for info in infos:
        raw = _read(name, archive, info)
        if info.filename in _JSON_MEMBERS:
            found[info.filename] = _json(name, info.filename, raw)
        elif info.filename.startswith(_DATA):
            ref = info.filename[len(_DATA) :]
            if hashlib.sha256(raw).hexdigest()[:16] != ref.split("/")[0]:
                raise BundleError(
                    f"{name}: the data file {ref} does not match its checksum (it was changed or "
                    "damaged): it is not imported"
                )
            found["data"][ref] = raw
        else:
            found[info.filename] = raw
    return found


def _read(name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, never more than its header declares (a lying header is caught while reading)."""
    try:
        with archive.open(info) as f:
            raw = f.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
        raise BundleError(
            f"{name}: {info.filename} cannot be read ({e}): the bundle is damaged or encrypted; export it again"
        ) from None
    if len(raw) > info.file_size:
        raise BundleError(f"{name}: {info.filename} holds more than its header says: it is not imported")
    return raw


def _json(name: str, member: str, raw: bytes) -> Any:
    """A JSON member parsed under bounds (size, nesting), as kfcore.spec.load_json bounds a spec."""
    if len(raw) > MAX_JSON_MB * 2**20:
        raise BundleError(f"{name}: {member} is {len(raw) / 2**20:,.0f} MB, over the {MAX_JSON_MB} MB it may be")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{name}: {member} is not UTF-8 JSON: it is not imported") from None
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise BundleError(f"{name}: {member} nests {depth:,} levels deep, more than a run has: it is not imported")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise BundleError(f"{name}: {member} is not valid JSON ({str(e)[:120]}): it is not imported") from None


def _checked(name: str, found: dict[str, Any]) -> tuple[RunSpec, dict[str, Any], list[dict[str, Any]], dict]:
    manifest, history, evaluation = found["manifest.json"], found["history.json"], found.get("evaluation.json", {})
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{name} is not a KF Studio bundle: its manifest.json does not say so")
    if manifest.get("version") != BUNDLE_VERSION:
        raise BundleError(
            f"{name} is a bundle of version {manifest.get('version')!r}; this KF Studio reads version "
            f"{BUNDLE_VERSION}: export it again from a matching KF Studio"
        )
    try:
        spec = RunSpec.from_dict(found["spec.json"])
    except SpecError as e:
        raise BundleError(f"{name}: its spec.json is not a valid run spec ({e}): it is not imported") from None
    if manifest.get("status") != "finished":
        raise BundleError(
            f"{name} holds a run that is {manifest.get('status')!r}, not finished: only finished runs are imported"
        )
    if not (
        isinstance(history, list)
        and all(
            isinstance(r, dict) and _is_int(r.get("epoch")) and isinstance(r.get("time", 0.0), (int, float))
            for r in history
        )
    ):
        raise BundleError(f"{name}: its history.json is not a list of epochs: it is not imported")
    if not all(_numbers(v) for r in history for v in r.values()):
        raise BundleError(f"{name}: its history.json holds values that are not numbers: it is not imported")
    if len({r["epoch"] for r in history}) < len(history):
        raise BundleError(f"{name}: its history.json lists an epoch twice: it is not imported")
    if not isinstance(evaluation, dict) or not _evaluation_ok(evaluation):
        raise BundleError(f"{name}: its evaluation.json is not a KF Studio evaluation: it is not imported")
    for key, kind in (("hardware", dict), ("info", dict), ("test", dict), ("name", str)):
        if not isinstance(manifest.get(key), kind):
            raise BundleError(f"{name}: its manifest.json has no valid {key!r}: it is not imported")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in manifest["test"].values()):
        raise BundleError(f"{name}: its test results are not numbers: it is not imported")
    for member in ("model.keras", PREDICTIONS_FILE):
        if member in found and not zipfile.is_zipfile(io.BytesIO(found[member])):
            raise BundleError(
                f"{name}: its {member} is damaged (not the ZIP a Keras model or NumPy archive is): it is not imported"
            )
    data_refs = {p for p in uploads.files(spec.data) if uploads.UPLOAD_REF.fullmatch(p)}
    lacking = sorted(data_refs - set(found["data"]))
    if lacking:
        raise BundleError(
            f"{name}: the run trained on the upload {lacking[0]}, which the bundle does not carry: it is not imported"
        )
    return spec, manifest, history, evaluation


def _numbers(value: Any) -> bool:
    """A number, None, or lists of them (an epoch's per-class accuracies, its validation confusion matrix)."""
    if isinstance(value, list):
        return all(_numbers(v) for v in value)
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _evaluation_ok(ev: dict[str, Any]) -> bool:
    """The parts of an evaluation the pages and the card read have the trainer's shapes (kfcore.training.evaluate)."""
    if "confusion_matrix" in ev:
        names, cm = ev.get("class_names"), ev["confusion_matrix"]
        if not (
            isinstance(names, list)
            and isinstance(cm, list)
            and len(cm) == len(names)
            and all(isinstance(row, list) and len(row) == len(names) and _numbers(row) for row in cm)
        ):
            return False
        per_class = ev.get("per_class", [])
        keys = ("precision", "recall", "f1", "support")
        if not (
            isinstance(per_class, list)
            and all(isinstance(c, dict) and "class" in c and all(_numbers(c.get(k)) for k in keys) for c in per_class)
        ):
            return False
    return all(_numbers(ev.get(k)) for k in ("mae", "rmse", "r2", "accuracy", "macro_f1", "best_epoch"))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def import_bundle(path: Path, store: RunStore, owner: str | None = None, max_upload_mb: int | None = None) -> str:
    """Import a bundle into `store` as a read-only finished run of `owner`; returns its new id. Raises BundleError."""
    found = read_bundle(path, max_upload_mb)
    spec, manifest, history, evaluation = _checked(path.name, found)
    with store.writing():
        for ref, raw in found["data"].items():
            target = uploads.local_path(ref, store.uploads_dir)
            if not target.exists():  # the same reference is the same content (its folder is the checksum)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(raw)
            if owner is not None:
                store.add_upload(owner, ref, Path(ref).name)
    files = {m: found[m] for m in _FILE_MEMBERS[:3] if m in found}
    origin = {"run": str(manifest.get("id")), "file": path.name, "imported": time.time()}
    return store.add_imported(spec.to_dict(), manifest, history, evaluation, files, origin, owner)
