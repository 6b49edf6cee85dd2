"""Every export of a run, by format name: what `python -m kfcore export --format F` and the dashboard's buttons write.

FORMATS names each format with one line on how to load what it writes (the CLI's help, the pages' picker
and the model card show these lines). export() writes one format into a folder; the model formats import
TensorFlow, so the dashboard never calls it in its own process: in_subprocess() runs the CLI in a child
process and streams its progress.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from kfcore.data import uploads
from kfcore.runs.store import RunRecord, RunStore

if TYPE_CHECKING:
    from kfcore.export.convert import TestSplit

FORMATS: dict[str, str] = {
    "keras": "model.keras (and recipe.json for a table): keras.saving.load_model('model.keras'); "
    "python -m kfcore predict applies the recipe to raw rows",
    "python": "train.py (and the data file it reads): python train.py trains the run again with tf.keras alone",
    "savedmodel": "savedmodel/: tf.saved_model.load('savedmodel').serve(x), or TF Serving's serving_default "
    "signature; x: a float32 batch as the .keras model takes it (a table's encoded columns: "
    "recipe.json beside it makes them from raw rows)",
    "tflite": "model.tflite: ai_edge_litert.interpreter.Interpreter(model_path='model.tflite'), float32 inputs as "
    "the .keras model takes them (--quantize dynamic: int8 weights)",
    "onnx": "model.onnx: onnxruntime.InferenceSession('model.onnx').run(None, {'inputs:0': x}), float32 inputs as "
    "the .keras model takes them",
    "card": "card.html: the model card, one HTML file; open it in any browser, offline",
    "bundle": "a .zip of the run (spec, history, evaluation, model, script, card): python -m kfcore import "
    "BUNDLE.zip, or Import on the Runs page of another KF Studio",
    "tensorboard": "tensorboard/: the run's curves as event files; tensorboard --logdir tensorboard",
}
MODEL_FORMATS = ("keras", "savedmodel", "tflite", "onnx", "bundle")  # these need the run's saved model
TF_FORMATS = ("savedmodel", "tflite", "onnx", "tensorboard")  # these import TensorFlow: never in the web process
EXPORT_TIMEOUT_S = 600.0
EXPORT_WAITING = "waiting for another export to finish"


@dataclass
class _ExportSlots:
    """Export children running at once in this process, at most as many as runs train at once (KF_MAX_CONCURRENT):
    each imports TensorFlow (about 500 MB), so a class pressing Export together could otherwise exhaust a hosted
    server's memory. Sized on first use, from the limits then in force."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    slots: threading.BoundedSemaphore | None = None

    def semaphore(self) -> threading.BoundedSemaphore:
        with self.lock:
            if self.slots is None:
                from kfcore.runs.limits import Limits

                self.slots = threading.BoundedSemaphore(Limits.from_env().max_concurrent)
            return self.slots


_export_slots = _ExportSlots()
_DONE = "export.json"  # beside a kept export: its files and notes


class ExportError(RuntimeError):
    """The export cannot be written; the message says why and what to do."""


@dataclass
class Exported:
    files: list[Path] = field(default_factory=list)  # what was written, top level of the folder
    notes: list[str] = field(default_factory=list)  # what the user should know: sizes, scores, the input it takes


Progress = Callable[[str], None]


def check_format(fmt: str, quantize: str | None = None) -> None:
    from kfcore.export.convert import QUANTIZE

    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if quantize is not None and (fmt != "tflite" or quantize not in QUANTIZE):
        raise ExportError(
            f"--quantize {quantize} applies to the tflite format only, with one of: {', '.join(QUANTIZE)}"
        )


def export(
    store: RunStore,
    record: RunRecord,
    fmt: str,
    out: Path,
    quantize: str | None = None,
    progress: Progress = lambda _: None,
) -> Exported:
    """Write `record`'s export in format `fmt` into the folder `out` (made if missing). Raises ExportError."""
    from kfcore.export import script as script_export  # numpy and the data modules: loaded only to export

    check_format(fmt, quantize)
    model_path = Path(record.model_path or "")
    if fmt in MODEL_FORMATS and (not record.model_path or not model_path.is_file()):
        raise ExportError(
            f"run {record.id} has no saved model (its status is {record.status}); train it to the end first"
        )
    if fmt == "card" and record.status != "finished":
        raise ExportError(
            f"run {record.id} is {record.status}: a model card describes a finished run; train it to the end first"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        if fmt == "keras":
            return Exported(_copy(script_export.model_files(model_path), out))
        if fmt == "python":
            return _python(store, record, out)
        if fmt == "card":
            path = out / "card.html"
            path.write_text(card_html(store, record), encoding="utf-8")
            return Exported([path])
        if fmt == "bundle":
            return _bundle(store, record, out, progress)
        if fmt == "tensorboard":
            return _tensorboard(store, record, out, progress)
        return _model_format(store, record, model_path, fmt, out, quantize, progress)
    except OSError as e:
        raise ExportError(f"cannot write to {out}: {e.strerror or e}") from None


def _copy(files: list[Path], out: Path) -> list[Path]:
    written = []
    for f in files:
        shutil.copyfile(f, out / f.name)
        written.append(out / f.name)
    return written


def script_of(store: RunStore, record: RunRecord) -> tuple[str, list[Path]]:
    """The run's standalone script and the data files it reads from beside itself."""
    from kfcore.data import DataError
    from kfcore.export import script as script_export
    from kfcore.model.shapes import ShapeError
    from kfcore.spec import RunSpec, SpecError

    try:
        spec = RunSpec.from_dict(record.spec)
        spec.data = uploads.resolve(spec.data, store.uploads_dir)  # the files themselves: they go beside it
        return script_export.python_script(spec, record.name), script_export.data_files(spec)
    except (SpecError, DataError, ShapeError) as e:
        raise ExportError(f"cannot write the script of run {record.id}: {e}") from None


def _python(store: RunStore, record: RunRecord, out: Path) -> Exported:
    from kfcore.export import script as script_export  # numpy and the data modules: loaded only to export

    script, data = script_of(store, record)
    written = _copy(data, out)
    (out / script_export.SCRIPT_NAME).write_text(script, encoding="utf-8")
    return Exported([*written, out / script_export.SCRIPT_NAME])


def _recipe(record: RunRecord) -> dict | None:
    from kfcore.data.recipe import RECIPE_FILE

    path = Path(record.model_path).with_name(RECIPE_FILE) if record.model_path else None
    return json.loads(path.read_text(encoding="utf-8")) if path is not None and path.is_file() else None


def card_html(store: RunStore, record: RunRecord) -> str:
    from kfcore.export.card import model_card

    full = store.get(record.id) or record  # with its evaluation
    return model_card(full, store.epochs(record.id), _recipe(record), FORMATS)


def _bundle(store: RunStore, record: RunRecord, out: Path, progress: Progress) -> Exported:
    from kfcore.export.bundle import bundle_name, write_bundle

    progress("writing the script and the model card")
    try:
        script, data = script_of(store, record)
    except ExportError as e:  # the bundle still carries the run: only its script is left out
        script, data, note = None, [], [f"no train.py in the bundle: {e}"]
    else:
        note = []
    progress("zipping the run")
    path = out / bundle_name(record)
    write_bundle(path, store.get(record.id) or record, store.epochs(record.id), script, data, card_html(store, record))
    return Exported([path], note)


def _tensorboard(store: RunStore, record: RunRecord, out: Path, progress: Progress) -> Exported:
    from kfcore.export.tensorboard import write_events

    history = store.epochs(record.id)
    if not history:
        raise ExportError(f"run {record.id} has no epochs recorded yet: nothing to show in TensorBoard")
    progress("writing the event files")
    root = write_events(history, out, record.info.get("class_names") or [])
    return Exported([root], [f"{len(history)} epochs written; view them with: tensorboard --logdir {root}"])


def run_test_split(store: RunStore, record: RunRecord) -> TestSplit | str:
    """The run's test split (kfcore.export.convert.TestSplit), prepared as the trainer prepared it, or why it cannot be."""
    from kfcore.data import DataError
    from kfcore.export.convert import TestSplit
    from kfcore.model.shapes import ShapeError
    from kfcore.runs.limits import LimitError
    from kfcore.spec import RunSpec, SpecError
    from kfcore.training.train import prepare

    try:
        spec = RunSpec.from_dict(record.spec)
        spec = replace(spec, data=uploads.resolve(spec.data, store.uploads_dir))
        ds, splits, _ = prepare(spec)
    except (SpecError, DataError, ShapeError, LimitError) as e:
        return f"its data cannot be loaded here ({e})"
    return TestSplit(splits.x_test, splits.y_test, ds.task)


def _model_format(
    store: RunStore, record: RunRecord, model_path: Path, fmt: str, out: Path, quantize: str | None, progress: Progress
) -> Exported:
    from kfcore.export import convert
    from kfcore.export import script as script_export

    progress("loading the model (TensorFlow)")
    try:
        model = convert.load_keras(model_path)
    except (OSError, ValueError) as e:
        raise ExportError(
            f"run {record.id}'s saved model cannot be loaded ({str(e).splitlines()[0][:200]}); train the run again"
        ) from None
    recipe = _copy(script_export.model_files(model_path)[1:], out)  # tables: raw rows -> input
    shape = tuple(model.inputs[0].shape[1:])
    takes = f"it takes a float32 batch of shape (n, {', '.join(map(str, shape))})" + (
        ": a table's encoded columns; recipe.json beside it makes them from raw rows" if recipe else ""
    )
    notes = [takes]
    progress(f"converting to {fmt}")
    try:
        if fmt == "savedmodel":
            written = [convert.savedmodel(model, out)]
        elif fmt == "onnx":
            path = out / convert.ONNX_FILE
            path.write_bytes(convert.onnx_bytes(model))
            written = [path]
        else:
            flatbuffer = convert.tflite_bytes(model, quantize)
            path = out / convert.TFLITE_FILE
            path.write_bytes(flatbuffer)
            written = [path]
            test = run_test_split(store, record)
            if isinstance(test, convert.TestSplit):
                notes.append(convert.compare_tflite(model, flatbuffer, test, progress))
            else:
                notes.append(
                    f"{convert.TFLITE_FILE}: {len(flatbuffer) / 1024:,.1f} KiB; its test score was not measured: {test}"
                )
            if quantize:
                float_size = len(convert.tflite_bytes(model))
                notes.append(
                    f"dynamic-range quantised; the float32 flatbuffer is {float_size / 1024:,.1f} KiB"
                    + (
                        ""
                        if len(flatbuffer) < float_size
                        else ": no weight tensor of this model reaches the "
                        "1,024 values the converter starts quantising at, so nothing was quantised"
                    )
                )
    except convert.FormatError as e:
        raise ExportError(str(e)) from None
    return Exported([*written, *recipe], notes)


# -- in a child process, for the dashboard ------------------------------------------------------------------------


def in_subprocess(
    store_root: str | Path,
    run_id: str,
    fmt: str,
    out: Path,
    quantize: str | None = None,
    timeout: float = EXPORT_TIMEOUT_S,
) -> Iterator[str | Exported]:
    """Run `python -m kfcore export` in a child process: yields each progress step (str) as it comes, then the
    Exported. Raises ExportError with the CLI's own message when it refuses, fails or takes too long."""
    import kfcore

    root = Path(kfcore.__file__).resolve().parents[1]  # the folder kfcore is in: the child imports it from there
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (str(root), os.environ.get("PYTHONPATH")))),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    args = [
        sys.executable,
        "-m",
        "kfcore",
        "export",
        run_id,
        "--format",
        fmt,
        "--out",
        str(out),
        "--store",
        str(store_root),
        "--json",
        *(("--quantize", quantize) if quantize else ()),
    ]
    # stderr into a file, not a pipe: TensorFlow's logs could fill a pipe nobody reads while stdout is read.
    errors_file = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors_file, text=True, cwd=root, env=env)
    timer = _kill_after(child, timeout)
    try:
        assert child.stdout is not None
        done = None
        for line in child.stdout:
            try:
                event = json.loads(line)
            except ValueError:  # a library's stray print: only the CLI's own JSON lines count
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "progress":
                yield event["step"]
            elif event.get("event") == "done":
                done = Exported([Path(f) for f in event["files"]], event["notes"])
        code = child.wait()
        errors_file.seek(0)
        stderr = errors_file.read()
    finally:
        timer.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
        errors_file.close()
    if code == 0 and done is not None:
        yield done
        return
    errors = [line[len("error: ") :] for line in stderr.splitlines() if line.startswith("error: ")]
    if errors:
        raise ExportError(errors[-1])
    if code in (-9, 137):
        raise ExportError(f"the export took longer than {timeout:.0f} s or ran out of memory and was stopped")
    raise ExportError(
        f"the export process stopped unexpectedly (exit {code}): "
        f"{(stderr.strip().splitlines() or ['no message'])[-1][:200]}"
    )


# -- for the dashboard: each export made once per run, kept in the run's folder, downloaded from there ---------------


def cache_dir(store: RunStore, run_id: str, fmt: str, quantize: str | None = None) -> Path:
    return store.run_dir(run_id) / "exports" / (f"{fmt}-{quantize}" if quantize else fmt)


def cached(folder: Path) -> Exported | None:
    """The export kept in `folder` by prepared(), or None when there is none (yet)."""
    try:
        done = json.loads((folder / _DONE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Exported([folder / name for name in done["files"]], done["notes"])


def prepared(store: RunStore, run_id: str, fmt: str, quantize: str | None = None) -> Iterator[str | Exported]:
    """The export for a download: the kept one, else made in a child process (in_subprocess: its progress steps,
    then the Exported) and kept. A half-made one is never kept: it is written aside and moved in when done. When
    as many exports as runs may train are being made already, it first says it waits (EXPORT_WAITING), then waits."""
    folder = cache_dir(store, run_id, fmt, quantize)
    done = cached(folder)
    if done is not None:
        yield done
        return
    slots = _export_slots.semaphore()
    if not slots.acquire(blocking=False):
        yield EXPORT_WAITING
        if not slots.acquire(timeout=EXPORT_TIMEOUT_S):
            raise ExportError("the server is busy with other exports; try again in a few minutes")
        done = cached(folder)  # the export it waited for may have been this one
        if done is not None:
            slots.release()
            yield done
            return
    scratch = folder.with_name(f".{folder.name}.{os.getpid()}.{threading.get_ident()}")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        for event in in_subprocess(store.root, run_id, fmt, scratch, quantize):
            if isinstance(event, Exported):
                with store.writing():
                    (scratch / _DONE).write_text(
                        json.dumps({"files": [f.name for f in event.files], "notes": event.notes}), encoding="utf-8"
                    )
                    shutil.rmtree(folder, ignore_errors=True)
                    scratch.replace(folder)
                event = cached(folder) or event
            yield event
    finally:
        slots.release()
        shutil.rmtree(scratch, ignore_errors=True)


def download_name(exported: Exported, stem: str, fmt: str) -> str:
    """The downloaded file's name: a single file keeps its own (a bundle's) or gets the run's stem; several, a zip."""
    if _single(exported):
        only = exported.files[0]
        return only.name if only.suffix == ".zip" else f"{stem}-{only.name}"
    return f"{stem}-{fmt}.zip"


def download_bytes(exported: Exported) -> bytes:
    """What download_name names: a single file as it is, several files or a folder zipped together."""
    import io
    import zipfile

    if _single(exported):
        return exported.files[0].read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for f in exported.files:
            for path in sorted(f.rglob("*")) if f.is_dir() else [f]:
                if path.is_file():
                    archive.write(path, arcname=path.relative_to(f.parent).as_posix())
    return out.getvalue()


def _single(exported: Exported) -> bool:
    return len(exported.files) == 1 and exported.files[0].is_file()


def _kill_after(child: subprocess.Popen, timeout: float) -> threading.Timer:
    timer = threading.Timer(timeout, child.kill)
    timer.daemon = True
    timer.start()
    return timer
