"""Command line: `python -m kfcore train SPEC.json | runs | show RUN_ID | predict RUN_ID INPUT.csv | export RUN_ID`.

train prints one JSON object per line (each epoch's Keras logs, then a done line with the test metrics)
and records the run in the store like the dashboard does. Anything a user can get wrong exits 2 with a
single `error:` line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, like every other refusal
        print(f"error: {message} (see python -m kfcore --help)", file=sys.stderr)
        sys.exit(2)


def _fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def _print(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def _store(args: argparse.Namespace) -> Any:
    from kfcore.runs.store import RunStore

    try:
        return RunStore(args.store)
    except OSError as e:
        _fail(f"cannot open the run store at {args.store or os.environ.get('KF_HOME') or '.kf'}: {e.strerror or e}")


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from kfcore.data import DataError, uploads
    from kfcore.model.advice import model_advice
    from kfcore.model.shapes import ShapeError
    from kfcore.runs.limits import LimitError, Limits
    from kfcore.spec import MAX_SPEC_BYTES, RunSpec, SpecError
    from kfcore.training.train import prepare

    path = Path(args.spec)
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_SPEC_BYTES + 1)  # never more than a spec can be: the parser refuses the rest
    except (OSError, ValueError) as e:
        _fail(f"cannot read the spec file {path}: {getattr(e, 'strerror', None) or e}")
    store = _store(args)
    limits = Limits.from_env()
    for problem in limits.problems:  # the mode's default applies for that variable: it still trains
        print(f"warning: {problem}", file=sys.stderr)
    try:
        spec = RunSpec.from_json(text)
        # Refuse bad data or an unbuildable stack before TensorFlow is even imported; an upload reference (a spec
        # from a share link or `show`) names a file in the store. The run trains on this very dataset: read once.
        dataset, _, _ = prepare(replace(spec, data=uploads.resolve(spec.data, store.uploads_dir)), limits=limits)
    except (SpecError, DataError, ShapeError, LimitError) as e:
        _fail(str(e))
    for note in model_advice(spec, dataset.task, dataset.n_classes):  # it still trains: the user may mean it
        print(f"warning: {note}", file=sys.stderr)

    run_id = store.create_run(spec.to_dict(), name=args.name)
    return _train_here(store, run_id, limits, dataset)


def _train_here(store: Any, run_id: str, limits: Any, dataset: Any = None) -> int:
    """Train a queued run in this process, one JSON line per epoch, then its outcome (train and continue)."""
    from kfcore.runs.jobs import execute_run

    if not store.start_in_process(run_id):
        _fail(f"run {run_id} was taken (or cancelled) by a server using this store before it could start here; "
              f"follow it with python -m kfcore show {run_id}")
    # Ctrl-C cancels cleanly (the run is recorded as cancelled) instead of dumping a KeyboardInterrupt trace.
    signal.signal(signal.SIGINT, lambda *_: store.request_cancel(run_id))
    signal.signal(signal.SIGTERM, lambda *_: store.request_cancel(run_id))

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "epoch":
            _print({"event": "epoch", **{k: v for k, v in event.items() if k != "event"}})

    result = execute_run(store, run_id, on_event=on_event, limits=limits, dataset=dataset)
    if result.status == "finished":
        _print({"event": "done", "run_id": run_id, "test": result.test, "best_epoch": result.best_epoch,
                "model": result.model_path})
        return 0
    if result.status == "cancelled":
        _fail(f"run {run_id} cancelled", code=130)
    _fail(f"run {run_id} failed: {result.error}", code=1)


def cmd_continue(args: argparse.Namespace) -> int:
    from kfcore.runs.jobs import continue_run
    from kfcore.runs.limits import Limits

    store = _store(args)
    limits = Limits.from_env()
    try:
        run_id = continue_run(store, args.run_id, args.epochs, args.learning_rate, limits=limits)
    except ValueError as e:
        _fail(str(e))
    return _train_here(store, run_id, limits)


def cmd_runs(args: argparse.Namespace) -> int:
    store = _store(args)
    runs = store.list_runs()
    if args.json:
        for r in runs:
            _print({"run_id": r.id, "name": r.name, "status": r.status, "created": r.created, "test": r.test})
        return 0
    if not runs:
        print("no runs yet: python -m kfcore train SPEC.json")
        return 0
    print(f"{'RUN ID':<13} {'NAME':<20} {'STATUS':<10} {'DATASET':<14} TEST")
    for r in runs:
        data = r.spec.get("data", {})
        dataset = data.get("name") or data.get("source", "")
        test = " ".join(f"{k}={v:.4f}" for k, v in r.test.items()) if r.test else (r.error or "")[:60]
        print(f"{r.id:<13} {r.name[:20]:<20} {r.status:<10} {str(dataset)[:14]:<14} {test}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = _store(args)
    record = store.get(args.run_id)
    if record is None:
        _fail(f"no run with id {args.run_id!r} in {store.root}; list them with python -m kfcore runs")
    out = {k: v for k, v in record.__dict__.items()}
    out["epochs"] = store.epochs(record.id)
    print(json.dumps(out, indent=2))
    return 0


def _finished_run(store: Any, run_id: str) -> Any:
    record = store.get(run_id, with_evaluation=False)
    if record is None:
        _fail(f"no run with id {run_id!r} in {store.root}; list them with python -m kfcore runs")
    if not record.model_path or not Path(record.model_path).is_file():
        _fail(f"run {run_id} has no saved model (its status is {record.status}); train it to the end first")
    return record


def cmd_predict(args: argparse.Namespace) -> int:
    from kfcore.data import DataError, read_csv, tidy_columns
    from kfcore.data.recipe import RecipeError
    from kfcore.training.predict import check_columns, predict_frame, recipe_of

    store = _store(args)
    record = _finished_run(store, args.run_id)
    try:
        recipe = recipe_of(store.run_dir(record.id))
        rows = read_csv(Path(args.input))  # size-checked as an upload is
        tidy_columns(rows)
        lacking = check_columns(recipe, list(rows.columns))
    except (DataError, RecipeError) as e:
        _fail(str(e))
    if len(rows) == 0:
        _fail(f"{Path(args.input).name} has a header row but no data rows; add the rows to predict")
    if lacking:  # it still predicts: a missing value is filled as the recipe says
        print(f"warning: no column {', '.join(map(repr, lacking))}: treated as missing in every row", file=sys.stderr)
    try:
        result = predict_frame(record.model_path, recipe, rows)
    except (OSError, ValueError) as e:  # a damaged model file, or one its recipe does not fit
        _fail(f"run {record.id}'s saved model cannot predict these rows ({(str(e).splitlines() or [type(e).__name__])[0][:200]}); "
              "train the run again")
    if args.out:
        try:
            result.to_csv(args.out, index=False)
        except OSError as e:
            _fail(f"cannot write {args.out}: {e.strerror or e}")
    else:
        result.to_csv(sys.stdout, index=False)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import shutil

    from kfcore.data import DataError, uploads
    from kfcore.export import script as export
    from kfcore.model.shapes import ShapeError
    from kfcore.spec import RunSpec, SpecError

    store = _store(args)
    out = Path(args.out)
    if args.format == "keras":
        record = _finished_run(store, args.run_id)
        written = export.model_files(record.model_path)
    else:
        record = store.get(args.run_id, with_evaluation=False)
        if record is None:
            _fail(f"no run with id {args.run_id!r} in {store.root}; list them with python -m kfcore runs")
        try:
            spec = RunSpec.from_dict(record.spec)
            spec.data = uploads.resolve(spec.data, store.uploads_dir)  # the files themselves: they go beside it
            script = export.python_script(spec, record.name)
        except (SpecError, DataError, ShapeError) as e:
            _fail(f"cannot write the script of run {record.id}: {e}")
        written = export.data_files(spec)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for f in written:
            shutil.copyfile(f, out / f.name)
        if args.format == "python":
            (out / export.SCRIPT_NAME).write_text(script, encoding="utf-8")
            written.append(out / export.SCRIPT_NAME)
    except OSError as e:
        _fail(f"cannot write to {out}: {e.strerror or e}")
    for f in written:
        print(out / f.name)
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = _Parser(prog="python -m kfcore", description="KF Studio's engine: train tf.keras runs and read the run store.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    store_help = "run store directory (default: $KF_HOME or ./.kf)"
    p = sub.add_parser("train", help="train a run spec (JSON) and print one JSON line per epoch")
    p.add_argument("spec", help="path of a run spec JSON file")
    p.add_argument("--store", help=store_help)
    p.add_argument("--name", help="a name for the run")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("continue", help="train a finished run N more epochs from its saved state, as a child run")
    p.add_argument("run_id")
    p.add_argument("--epochs", type=int, required=True, help="how many more epochs")
    p.add_argument("--learning-rate", type=float, help="the child's learning rate (default: the parent's)")
    p.add_argument("--store", help=store_help)
    p.set_defaults(func=cmd_continue)
    p = sub.add_parser("runs", help="list the runs in the store")
    p.add_argument("--store", help=store_help)
    p.add_argument("--json", action="store_true", help="one JSON object per run")
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("show", help="print one run as JSON")
    p.add_argument("run_id")
    p.add_argument("--store", help=store_help)
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("predict", help="predict raw table rows (CSV) with a finished run's model and recipe")
    p.add_argument("run_id")
    p.add_argument("input", help="a CSV with the columns the run trained on (its target column is ignored)")
    p.add_argument("--out", help="write the rows with their predictions here (default: standard output)")
    p.add_argument("--store", help=store_help)
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("export", help="write a run's standalone Keras script and its data file, or its .keras model")
    p.add_argument("run_id")
    p.add_argument("--format", choices=("python", "keras"), default="python",
                   help="python: train.py and the data file it reads; keras: model.keras and recipe.json")
    p.add_argument("--out", default=".", help="the directory to write into (default: the current one)")
    p.add_argument("--store", help=store_help)
    p.set_defaults(func=cmd_export)
    args = parser.parse_args(argv)
    from kfcore.runs.store import StoreFullError

    try:
        return args.func(args)
    except StoreFullError as e:  # any command, any store call: one line, never a traceback
        _fail(str(e))


if __name__ == "__main__":
    sys.exit(main())
