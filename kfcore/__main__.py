"""Command line: `python -m kfcore train SPEC.json | runs | show RUN_ID`.

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
    from kfcore.store import RunStore

    try:
        return RunStore(args.store)
    except OSError as e:
        _fail(f"cannot open the run store at {args.store or os.environ.get('KF_HOME') or '.kf'}: {e.strerror or e}")


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from kfcore import uploads
    from kfcore.advice import model_advice
    from kfcore.data import DataError
    from kfcore.limits import LimitError, Limits
    from kfcore.shapes import ShapeError
    from kfcore.spec import MAX_SPEC_BYTES, RunSpec, SpecError
    from kfcore.train import prepare

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

    from kfcore.jobs import execute_run

    run_id = store.create_run(spec.to_dict(), name=args.name)
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
    p = sub.add_parser("runs", help="list the runs in the store")
    p.add_argument("--store", help=store_help)
    p.add_argument("--json", action="store_true", help="one JSON object per run")
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("show", help="print one run as JSON")
    p.add_argument("run_id")
    p.add_argument("--store", help=store_help)
    p.set_defaults(func=cmd_show)
    args = parser.parse_args(argv)
    from kfcore.store import StoreFullError

    try:
        return args.func(args)
    except StoreFullError as e:  # any command, any store call: one line, never a traceback
        _fail(str(e))


if __name__ == "__main__":
    sys.exit(main())
