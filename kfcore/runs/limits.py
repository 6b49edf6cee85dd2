"""Limits a server puts on runs: a memory budget always, and in hosted mode caps on epochs, parameters,
rows, upload size, concurrent runs and time per run. Each refusal names the limit and what to change.

Configured by environment variables (hosted mode: KF_HOSTED=1), so the same code serves a laptop and
a shared server; README's hosting section lists them.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kfcore.model.shapes import ShapeReport
from kfcore.runs.store import RunRecord, RunStore
from kfcore.spec import DataSpec, RunSpec, SpecError


class LimitError(ValueError):
    """A run this server will not take, with the limit that was hit and what to do."""


# Hosted defaults: generous for learning, small enough that one visitor cannot starve the others.
HOSTED_DEFAULTS = {
    "max_epochs": 200,
    "max_params": 5_000_000,
    "max_rows": 200_000,
    "max_upload_mb": 50,
    "max_runs_per_session": 2,
    "max_runs_total": 8,
    "max_seconds_per_run": 900,
    "max_paused_seconds": 600,
    "max_trials": 16,
}
LOCAL_MAX_TRIALS = 256  # a sweep's trials on a laptop: each is a stored run; KF_MAX_TRIALS=0 lifts it
_ENV = {
    "max_epochs": "KF_MAX_EPOCHS",
    "max_params": "KF_MAX_PARAMS",
    "max_rows": "KF_MAX_ROWS",
    "max_upload_mb": "KF_MAX_UPLOAD_MB",
    "max_runs_per_session": "KF_MAX_RUNS_PER_SESSION",
    "max_runs_total": "KF_MAX_RUNS_TOTAL",
    "max_seconds_per_run": "KF_MAX_SECONDS_PER_RUN",
    "max_paused_seconds": "KF_MAX_PAUSED_SECONDS",
    "memory_budget_mb": "KF_MEMORY_BUDGET_MB",
    "max_concurrent": "KF_MAX_CONCURRENT",
    "max_trials": "KF_MAX_TRIALS",
}
_YES, _NO = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _total_memory_mb() -> int:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 8192


@dataclass(frozen=True)
class Limits:
    hosted: bool = False
    max_epochs: int | None = None
    max_params: int | None = None
    max_rows: int | None = None
    max_upload_mb: int | None = None
    max_runs_per_session: int | None = None
    max_runs_total: int | None = None
    max_seconds_per_run: float | None = None
    max_paused_seconds: float | None = None  # a paused run holds its worker: stopped after this long paused
    memory_budget_mb: int = 4096
    max_trials: int | None = None  # trials one sweep may have (kfcore.runs.sweep counts them before any runs)
    max_concurrent: int = 1  # runs training at once (kfcore.runs.jobs); from_env: one per two CPU cores by default
    keras_downloads: bool = True  # KF_KERAS_DOWNLOADS=0: a server with no way out, or that must fetch nothing
    # What was wrong with the variables these limits were read from, one message each (from_env); empty when none.
    problems: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        """Read the limits from the environment: the one place any KF_ limit variable is read. Unset values take
        the mode's defaults, 0 means no limit. Never raises: a malformed variable never lifts a limit, the mode's
        default applies for that variable and `problems` says what is wrong (the Train page shows it, the CLI
        prints a warning line)."""
        env = os.environ if env is None else env
        problems: list[str] = []
        hosted = _flag(env, "KF_HOSTED", default=False, strict=True, problems=problems)
        downloads = _flag(env, "KF_KERAS_DOWNLOADS", default=True, strict=False, problems=problems)
        values: dict[str, int | None] = dict(HOSTED_DEFAULTS) if hosted else {"max_trials": LOCAL_MAX_TRIALS}
        # Half the machine's memory for one training by default: the web server and other runs need the rest.
        values["memory_budget_mb"] = _total_memory_mb() // 2
        # One training per two CPU cores: TensorFlow uses several threads per training.
        cores_default = values["max_concurrent"] = max(1, (os.cpu_count() or 1) // 2)
        for field_name, var in _ENV.items():
            raw = env.get(var, "").strip()
            if not raw:
                continue
            try:
                number = int(float(raw))
            except (ValueError, OverflowError):
                number = -1
            if number < 0:
                default = values.get(field_name)
                applies = f"its default of {default:,}" if default else "no limit"
                zero = "0 = the default" if field_name == "max_concurrent" else "0 = no limit"
                problems.append(
                    f"{var}={raw[:40]!r} is not a whole number, so {applies} applies; set it to a whole number ({zero})"
                )
                continue
            values[field_name] = number if number > 0 else None
        if values.get("memory_budget_mb") is None:
            values["memory_budget_mb"] = 1 << 30
        if values.get("max_concurrent") is None:  # "no limit" on processes would be a fork bomb: the default
            values["max_concurrent"] = cores_default
        return cls(hosted=hosted, keras_downloads=downloads, problems=tuple(problems), **values)  # type: ignore[arg-type]


def _flag(env: Mapping[str, str], var: str, default: bool, strict: bool, problems: list[str]) -> bool:
    """An on/off variable. A value that is neither takes the stricter side (`strict`: hosted mode's caps on,
    downloads off), so a typo never lifts a limit, and is reported."""
    raw = env.get(var, "").strip()
    if not raw:
        return default
    if raw.lower() in _YES + _NO:
        return raw.lower() in _YES
    shown = "on" if strict else "off"
    problems.append(f"{var}={raw[:40]!r} is neither on nor off, so it counts as {shown}; set it to 1 or 0")
    return strict


DATA_SHARE = 4  # one dataset may take a quarter of the budget: training adds split copies, a pipeline copy, the model


def data_budget_bytes(limits: Limits) -> int:
    """The most memory loading one dataset may take (its arrays as read plus their float32 copies)."""
    return limits.memory_budget_mb * 2**20 // DATA_SHARE


def data_cache_bytes(limits: Limits) -> int:
    """The most memory the web process keeps in loaded datasets for all its sessions: half of one run's budget,
    a quarter of the machine by default (KF_MEMORY_BUDGET_MB moves it). One dataset over it is still served."""
    return limits.memory_budget_mb * 2**20 // 2


def rows_problem(n_rows: int, limits: Limits, counted_all: bool = True) -> str | None:
    """Why a dataset of n_rows is over this server's row limit (KF_MAX_ROWS), or None. counted_all=False: reading
    stopped after n_rows, so there are at least that many."""
    if limits.max_rows and n_rows > limits.max_rows:
        found = f"{n_rows:,}" if counted_all else f"more than {limits.max_rows:,}"
        return f"the dataset has {found} rows, over this server's limit of {limits.max_rows:,}; use a smaller sample"
    return None


# The batches a run predicts at besides its training batch (kfcore.training.train), before run_batches fits them to the
# budget. Try it predicts one sample at a time, under any training batch.
EVALUATE_BATCH = 256  # evaluate and predict on the test split
VALIDATION_BATCH = 512  # per-class validation accuracy after each epoch
BOUNDARY_BATCH = 4096  # the decision-boundary grid of a model with 2 inputs
TRAIN_COPIES = 3  # activations, their gradients and the optimizer's work space, per sample of a training batch
PREDICT_COPIES = 4  # per sample of a predict batch; measured 2.3-3.3× a 1×1 Conv2D's output on CPU (bench_bombs.py)


@dataclass(frozen=True)
class RunBatches:
    """The batch sizes one run uses: its training batch and the inference batches fitted to the memory budget."""

    train: int
    evaluate: int
    validation: int
    boundary: int


def _activation_bytes(report: ShapeReport) -> int:
    """float32 bytes of every layer's output for one sample."""
    return sum(row.values_per_sample for row in report.rows) * 4


def _fixed_bytes(report: ShapeReport, n_values: int) -> int:
    weights = report.total_params * 4 * 4  # weights, gradients and two optimizer slots (Adam)
    data = n_values * 4 * 2  # the arrays plus the copy the input pipeline makes
    return weights + data


def run_batches(report: ShapeReport, batch_size: int, n_values: int, limits: Limits) -> RunBatches:
    """Each inference batch at its preferred size, lowered until its activations fit in the memory budget beside
    the weights and data, but never below the training batch (which has to fit three times over anyway)."""
    room = limits.memory_budget_mb * 2**20 - _fixed_bytes(report, n_values)
    per_sample = _activation_bytes(report) * PREDICT_COPIES
    fits = int(room // per_sample) if per_sample else BOUNDARY_BATCH

    def fit(preferred: int) -> int:
        return max(batch_size, min(preferred, fits))

    return RunBatches(batch_size, fit(EVALUATE_BATCH), fit(VALIDATION_BATCH), fit(BOUNDARY_BATCH))


def estimate_training_memory_mb(report: ShapeReport, batch_size: int, n_values: int, limits: Limits) -> float:
    """A rough upper estimate of what a run takes at its largest moment, all float32: weights, gradients and two
    optimizer slots, the training data, and the activations of whichever batch needs most, training (with
    gradients) or any inference batch of run_batches."""
    batches = run_batches(report, batch_size, n_values, limits)
    per_sample = _activation_bytes(report)
    inference = max(batches.evaluate, batches.validation, batches.boundary) * per_sample * PREDICT_COPIES
    activations = max(batch_size * per_sample * TRAIN_COPIES, inference)
    return (_fixed_bytes(report, n_values) + activations) / 2**20


def check_run(spec: RunSpec, report: ShapeReport, n_rows: int, n_values: int, limits: Limits) -> None:
    """Refuse a run over any limit before training, naming the limit and what to change."""
    problems = []
    t = spec.train
    if limits.max_epochs and t.epochs > limits.max_epochs:
        problems.append(f"{t.epochs} epochs is over this server's limit of {limits.max_epochs}; lower Epochs")
    if limits.max_params and report.total_params > limits.max_params:
        problems.append(
            f"the model has {report.total_params:,} parameters, over this server's limit of {limits.max_params:,}; "
            "use fewer units or filters, or add pooling before large Dense layers"
        )
    if rows := rows_problem(n_rows, limits):
        problems.append(rows)
    need = estimate_training_memory_mb(report, t.batch_size, n_values, limits)
    if need > limits.memory_budget_mb:
        problems.append(
            f"training this model would need about {need:,.0f} MB of memory, more than the {limits.memory_budget_mb:,} MB "
            "this server allows one run; use fewer units or filters, fewer layers or a smaller batch size"
        )
    if problems:
        raise LimitError("; ".join(problems))


def check_data_access(
    data: DataSpec, limits: Limits, store: RunStore, owner: str | None, via: RunRecord | None = None
) -> None:
    """In hosted mode a spec (from a form, a share link, a queued run or a hostile client) may only read built-in
    sets, the named Keras downloads and the uploads `owner` may read: its own and those of runs it forked
    (grant_data_access); never another path on the server, nor another browser's upload. `via`, a run this
    session was given by its link, lets it read that run's own files too (when the run's owner may).
    KF_KERAS_DOWNLOADS=0 (either mode) takes the Keras downloads away too. The web process and the worker
    both ask this, so a link and a queued run meet the same rule."""
    if data.source == "keras" and not limits.keras_downloads:
        raise LimitError(
            f"this server does not download Keras datasets (KF_KERAS_DOWNLOADS=0), so {data.name or 'it'!r} is not "
            "available; pick a built-in dataset (digits is MNIST-like) or upload a file on the Data page"
        )
    if not limits.hosted or data.source in ("builtin", "keras"):
        return
    vouched = _run_uploads(via, store) if via is not None else set()
    from kfcore.data import uploads  # here: kfcore.data imports this module (importing it first was circular)

    for path in uploads.files(data):
        name = Path(path).name  # never the server path, even of a file that is not there
        ref = uploads.ref_of(path, store.uploads_dir)
        if ref is None:
            raise LimitError(
                f"this hosted server reads only built-in datasets and files uploaded on the Data page, not {name!r}; "
                "upload the file there"
            )
        if ref not in vouched and not store.may_read_upload(owner, ref):
            raise LimitError(
                f"{name!r} was uploaded from another browser, and uploads here are private to the browser that "
                "uploaded them; upload your own copy on the Data page, or ask its owner for a link to their run"
            )


def grant_data_access(store: RunStore, owner: str, via: RunRecord) -> None:
    """A fork of `via` (after check_data_access allowed its data): from now on `owner` may read that run's own
    uploads, so the runs it trains from the fork pass the worker's check; no other upload of its owner."""
    for ref in _run_uploads(via, store):
        store.add_upload(owner, ref, Path(ref).name, via=via.id)


def _run_uploads(record: RunRecord, store: RunStore) -> set[str]:
    """The uploads a run reads that its owner may read: what a run vouches for to whoever it is shared with."""
    try:
        data = RunSpec.from_dict(record.spec).data
    except SpecError:
        return set()
    from kfcore.data import uploads

    refs = {uploads.ref_of(path, store.uploads_dir) for path in uploads.files(data)}
    return {ref for ref in refs if ref is not None and store.may_read_upload(record.owner, ref)}


def describe(limits: Limits) -> list[str]:
    """The caps a hosted server sets, one short phrase each, for the page that lists them (memory is left out:
    it is an estimate the Model page explains when a model is over it)."""
    parts = []
    if limits.max_epochs:
        parts.append(f"{limits.max_epochs:,} epochs per run")
    if limits.max_params:
        parts.append(f"{limits.max_params:,} parameters")
    if limits.max_rows:
        parts.append(f"{limits.max_rows:,} dataset rows")
    if limits.max_upload_mb:
        parts.append(f"{limits.max_upload_mb:,} MB per upload")
    if limits.max_runs_per_session:
        parts.append(
            f"{limits.max_runs_per_session} run{'s' if limits.max_runs_per_session != 1 else ''} "
            "queued or training per browser"
        )
    if limits.max_runs_total:
        parts.append(f"{limits.max_runs_total} on the whole server")
    if limits.max_seconds_per_run:
        seconds = limits.max_seconds_per_run
        parts.append(f"{seconds / 60:g} minutes per run" if seconds % 60 == 0 else f"{seconds:g} s per run")
    if limits.max_trials:
        parts.append(f"{limits.max_trials:,} trials per sweep")
    return parts


# -- who may change a run ---------------------------------------------------------------------------
# In hosted mode a run belongs to the browser that made it, known by an opaque random token the browser
# keeps (a cookie), or, where the server has sign-in, to the account (a token derived from its identity).
# The token is only ever compared for equality: never parsed, never used in a path.

OWNER_TOKEN = re.compile(r"[0-9a-f]{32}")


def new_owner_token() -> str:
    """A fresh owner token: 128 random bits as 32 lowercase hex digits."""
    return secrets.token_hex(16)


def account_owner_token(issuer: str, subject: str) -> str:
    """The owner token of a signed-in account: the same for its every session and browser, different for every
    (issuer, subject) pair (OpenID Connect's stable user id), in a new owner token's form so stores and can_modify
    need nothing new. The NUL between the two keeps ("ab", "c") and ("a", "bc") apart."""
    return hashlib.sha256(f"{issuer}\0{subject}".encode()).hexdigest()[:32]


def valid_owner_token(value: object) -> str | None:
    """`value` if it has an owner token's exact form (32 lowercase hex digits), else None."""
    return value if isinstance(value, str) and OWNER_TOKEN.fullmatch(value) else None


def can_modify(record: RunRecord, owner: str | None, limits: Limits) -> bool:
    """Whether `owner` may rename, delete or stop the run: anyone locally (one user), only its owner when hosted.
    A run with no owner (trained from the command line) is read-only to every browser of a hosted server; a run
    imported from a bundle is read-only everywhere: it records another store's work, and is forked to change it."""
    return not record.imported and can_delete(record, owner, limits)


def can_delete(record: RunRecord, owner: str | None, limits: Limits) -> bool:
    """Whether `owner` may delete the run: as can_modify, and an imported run may go too (its importer's, hosted)."""
    if not limits.hosted:
        return True
    return owner is not None and record.owner is not None and record.owner == owner
