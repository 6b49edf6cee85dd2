"""Command line: `python -m kfcore train SPEC.json | sweep SWEEP.json | runs | show RUN_ID | predict RUN_ID INPUT.csv |
export RUN_ID | import BUNDLE.zip`.

train prints one JSON object per line (each epoch's Keras logs, then a done line with the test metrics)
and records the run in the store like the dashboard does; with --address (or KF_RAY_ADDRESS, KF_EXECUTOR=ray)
it trains on Ray (kfcore.runs.executors), the store still written here. Anything a user can get wrong exits 2 with a
single `error:` line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
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
    from kfcore.runs.executors import ExecutorError, ray_settings
    from kfcore.runs.limits import LimitError, Limits
    from kfcore.spec import MAX_SPEC_BYTES, RunSpec, SpecError
    from kfcore.training.train import prepare

    path = Path(args.spec)
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_SPEC_BYTES + 1)  # never more than a spec can be: the parser refuses the rest
    except (OSError, ValueError) as e:
        _fail(f"cannot read the spec file {path}: {getattr(e, 'strerror', None) or e}")
    try:
        on_ray = ray_settings(address=args.address)
    except ExecutorError as e:
        _fail(str(e))
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

    if on_ray is not None:
        return _train_on_ray(store, spec, args.name, on_ray)
    run_id = store.create_run(spec.to_dict(), name=args.name)
    return _train_here(store, run_id, limits, dataset)


def _train_on_ray(store: Any, spec: Any, name: str | None, settings: Any) -> int:
    """Train on Ray (--address, KF_RAY_ADDRESS, KF_EXECUTOR=ray): one JSON line per epoch as it reaches the store
    through this process's relay, then the outcome, as when it trains here."""
    import time

    from kfcore.runs.executors import ExecutorError, RayExecutor
    from kfcore.runs.limits import LimitError

    try:
        executor = RayExecutor(store, settings, serve_queue=False)
    except ExecutorError as e:
        _fail(str(e))
    try:
        try:
            run_id = executor.submit(spec, name=name)
        except LimitError as e:
            _fail(str(e))
        signal.signal(signal.SIGINT, lambda *_: store.request_cancel(run_id))
        signal.signal(signal.SIGTERM, lambda *_: store.request_cancel(run_id))
        printed = 0
        while True:
            record = store.get(run_id)  # before its epochs: a final run's epochs are all stored
            epochs = store.epochs(run_id)
            for epoch in epochs[printed:]:
                _print({"event": "epoch", **{k: v for k, v in epoch.items() if k != "time"}})
            printed = len(epochs)
            if record.is_final:
                break
            time.sleep(0.2)
    finally:
        executor.shutdown()
    return _outcome(
        run_id, record.status, record.test, (record.evaluation or {}).get("best_epoch"), record.model_path, record.error
    )


def _train_here(store: Any, run_id: str, limits: Any, dataset: Any = None) -> int:
    """Train a queued run in this process, one JSON line per epoch, then its outcome (train and continue)."""
    from kfcore.runs.jobs import execute_run

    if not store.start_in_process(run_id):
        _fail(
            f"run {run_id} was taken (or cancelled) by a server using this store before it could start here; "
            f"follow it with python -m kfcore show {run_id}"
        )
    # Ctrl-C cancels cleanly (the run is recorded as cancelled) instead of dumping a KeyboardInterrupt trace.
    signal.signal(signal.SIGINT, lambda *_: store.request_cancel(run_id))
    signal.signal(signal.SIGTERM, lambda *_: store.request_cancel(run_id))

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "epoch":
            _print({"event": "epoch", **{k: v for k, v in event.items() if k != "event"}})

    result = execute_run(store, run_id, on_event=on_event, limits=limits, dataset=dataset)
    return _outcome(run_id, result.status, result.test, result.best_epoch, result.model_path, result.error)


def _outcome(
    run_id: str, status: str, test: dict[str, Any], best_epoch: int | None, model: str | None, error: str | None
) -> int:
    """A trained run's last line: done (exit 0), or one error line (cancelled 130, failed 1)."""
    if status == "finished":
        _print({"event": "done", "run_id": run_id, "test": test, "best_epoch": best_epoch, "model": model})
        return 0
    if status == "cancelled":
        _fail(f"run {run_id} cancelled", code=130)
    _fail(f"run {run_id} failed: {error}", code=1)


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
        print(
            json.dumps(
                [
                    {
                        "run_id": r.id,
                        "name": r.name,
                        "status": r.status,
                        "created": r.created,
                        "spec": r.spec,
                        "test": r.test,
                        "error": r.error,
                        "sweep": r.sweep,
                    }
                    for r in runs
                ]
            )
        )
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


def cmd_sweep(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from kfcore.data import DataError, uploads
    from kfcore.model.shapes import ShapeError
    from kfcore.runs import sweeprun
    from kfcore.runs.limits import LimitError, Limits
    from kfcore.runs.sweep import SweepError, load_sweep, settings, trial_spec, with_seeds
    from kfcore.runs.sweepresults import summary, trial_row
    from kfcore.spec import MAX_SPEC_BYTES
    from kfcore.training.train import prepare

    path = Path(args.sweep)
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_SPEC_BYTES + 1)
    except (OSError, ValueError) as e:
        _fail(f"cannot read the sweep file {path}: {getattr(e, 'strerror', None) or e}")
    if args.address and args.backend != "ray":
        _fail("--address names a Ray cluster: give it with --backend ray")
    resources = (0.0, 0.0)
    if args.backend == "ray":
        from kfcore.runs.executors import ExecutorError, ray_resources

        try:  # what each trial reserves, as a run does: KF_RAY_NUM_CPUS, KF_RAY_NUM_GPUS
            resources = ray_resources()
        except ExecutorError as e:
            _fail(str(e))
    store = _store(args)
    limits = Limits.from_env()
    for problem in limits.problems:
        print(f"warning: {problem}", file=sys.stderr)
    try:
        sweep = load_sweep(text)
        # Refuse bad data, an unbuildable stack or a trial over a limit before anything is queued.
        dataset = None
        plannable = [with_seeds(sweep, s)[0] for s in settings(sweep)] if sweep.search != "optuna" else [{}]
        for values in plannable:
            spec = trial_spec(sweep, values)
            local = replace(spec, data=uploads.resolve(spec.data, store.uploads_dir))
            same_data = dataset is not None and not any(p.startswith("data.") for p in values)
            dataset, _, _ = prepare(local, dataset=dataset if same_data else None, limits=limits)
        sweep_id = sweeprun.create(store, sweep, limits=limits)
    except (SweepError, DataError, ShapeError, LimitError) as e:
        _fail(str(e))

    out = sys.stdout  # the Ray backend sends Tune's own output to standard error while it runs

    def on_trial(record: Any) -> None:
        print(json.dumps(trial_row(sweep, record, store.epochs(record.id))), file=out, flush=True)

    if args.backend == "ray":
        from kfcore.runs import sweepray

        try:
            cpus, gpus = resources
            sweepray.run_ray(
                store,
                sweep_id,
                sweep,
                address=args.address,
                on_trial=on_trial,
                cpus_per_trial=cpus,
                gpus_per_trial=gpus,
            )
        except sweepray.RayError as e:
            _fail(str(e))
    else:
        from kfcore.runs.jobs import JobManager

        jobs = JobManager(store, max_concurrent=limits.max_concurrent)
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C: the trials in flight are cancelled
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            sweeprun.run_local(
                store,
                sweep_id,
                sweep,
                lambda spec, name, sweep_id: jobs.submit(spec, name=name, sweep=sweep_id),
                parallel=limits.max_concurrent,
                on_trial=on_trial,
                stop=stop,
            )
        finally:
            jobs.shutdown()
    rows = [trial_row(sweep, r, store.epochs(r.id)) for r in store.trials(sweep_id)]
    _print(summary(sweep, sweep_id, rows, args.backend))
    return 0 if any(r["status"] == "finished" for r in rows) else 1


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
        _fail(
            f"run {record.id}'s saved model cannot predict these rows ({(str(e).splitlines() or [type(e).__name__])[0][:200]}); "
            "train the run again"
        )
    if args.out:
        try:
            result.to_csv(args.out, index=False)
        except OSError as e:
            _fail(f"cannot write {args.out}: {e.strerror or e}")
    else:
        result.to_csv(sys.stdout, index=False)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from kfcore.export import formats

    store = _store(args)
    record = store.get(args.run_id, with_evaluation=False)
    if record is None:
        _fail(f"no run with id {args.run_id!r} in {store.root}; list them with python -m kfcore runs")

    def progress(step: str) -> None:
        if args.json:  # the dashboard's worker protocol (kfcore.export.convert.in_subprocess)
            _print({"event": "progress", "step": step})

    try:
        result = formats.export(store, record, args.format, Path(args.out), args.quantize, progress)
    except formats.ExportError as e:
        _fail(str(e))
    if args.json:
        _print({"event": "done", "files": [str(f) for f in result.files], "notes": result.notes})
        return 0
    for f in result.files:
        print(f)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from kfcore.export.bundle import BundleError, import_bundle
    from kfcore.runs.limits import Limits

    store = _store(args)
    try:
        run_id = import_bundle(Path(args.bundle), store, max_upload_mb=Limits.from_env().max_upload_mb)
    except BundleError as e:
        _fail(str(e))
    record = store.get(run_id, with_evaluation=False)
    _print(
        {
            "event": "imported",
            "run_id": run_id,
            "name": record.name if record else "",
            "test": record.test if record else {},
        }
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = _Parser(
        prog="python -m kfcore", description="KF Studio's engine: train tf.keras runs and read the run store."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    store_help = "run store directory (default: $KF_HOME or ./.kf)"
    p = sub.add_parser("train", help="train a run spec (JSON) and print one JSON line per epoch")
    p.add_argument("spec", help="path of a run spec JSON file")
    p.add_argument("--store", help=store_help)
    p.add_argument("--name", help="a name for the run")
    p.add_argument(
        "--address",
        help="train on the Ray cluster at this address (HOST:PORT or ray://HOST:10001; "
        "default: $KF_RAY_ADDRESS, else here)",
    )
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("continue", help="train a finished run N more epochs from its saved state, as a child run")
    p.add_argument("run_id")
    p.add_argument("--epochs", type=int, required=True, help="how many more epochs")
    p.add_argument("--learning-rate", type=float, help="the child's learning rate (default: the parent's)")
    p.add_argument("--store", help=store_help)
    p.set_defaults(func=cmd_continue)
    p = sub.add_parser("sweep", help="train every trial of a sweep file (JSON); one JSON line per finished trial")
    p.add_argument(
        "sweep", help='path of a sweep JSON file: {"base": <run spec>, "grid": {"train.learning_rate": [0.003, 0.03]}}'
    )
    p.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: this machine's worker pool (default); ray: Ray Tune on a Ray cluster",
    )
    p.add_argument("--address", help="the Ray cluster's HOST:PORT (default: $KF_RAY_ADDRESS, else a local Ray)")
    p.add_argument("--store", help=store_help)
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("runs", help="list the runs in the store")
    p.add_argument("--store", help=store_help)
    p.add_argument("--json", action="store_true", help="a JSON array: each run's spec, status, test metrics, sweep")
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
    from kfcore.export.convert import QUANTIZE
    from kfcore.export.formats import FORMATS

    p = sub.add_parser(
        "export",
        help="write a run in one format: " + ", ".join(FORMATS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="formats:\n" + "\n".join(f"  {k}: {v}" for k, v in FORMATS.items()),
    )
    p.add_argument("run_id")
    p.add_argument("--format", choices=tuple(FORMATS), default="python", help="what to write (default: python)")
    p.add_argument("--quantize", choices=QUANTIZE, help="tflite only: dynamic-range quantised weights (int8)")
    p.add_argument("--out", default=".", help="the directory to write into (default: the current one)")
    p.add_argument("--store", help=store_help)
    p.add_argument("--json", action="store_true", help="progress and the result as JSON lines")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("import", help="bring a run bundle (--format bundle) into the store as a read-only run")
    p.add_argument("bundle", help="the bundle's .zip file")
    p.add_argument("--store", help=store_help)
    p.set_defaults(func=cmd_import)
    args = parser.parse_args(argv)
    from kfcore.runs.store import StoreFullError

    try:
        return args.func(args)
    except StoreFullError as e:  # any command, any store call: one line, never a traceback
        _fail(str(e))


if __name__ == "__main__":
    sys.exit(main())
