"""Memory bombs against a real hosted server: its peak RSS while each bomb is uploaded and refused.

    python bench/bench_bombs.py [--out FILE]

Starts `streamlit run app.py` as a hosted server in a 3 GB container's configuration (KF_HOSTED=1,
KF_MEMORY_BUDGET_MB=1500), opens the Data page in Chromium for each bomb of tests/bombs.py (each inflates to
about 1.5 GB; the files are 1.6-4 MB, under the 50 MB upload cap), uploads it through the page's file input,
waits until the page has answered, and reads the server's VmHWM (peak RSS since it started) and VmRSS from
/proc/<pid>/status. Target: the peak stays under 1 GB, every bomb is refused with its message on the page, and
no exception is shown. Uploads are parsed in a capped child (kfcore/data/sandbox.py), so the server itself only
reads the CSV header's bounded head.

Then the memory estimate's batches: a wide 1×1 Conv2D (4096 filters) on digits at batch size 1 trains one
epoch in a fresh process per memory budget; its peak RSS above TensorFlow's own (ru_maxrss after `import keras`)
is compared with the estimate. With no budget to speak of the run predicts at the old fixed batches (validation
512, evaluate 256); a budget lowers them (kfcore.runs.limits.run_batches).

Writes a markdown fragment with --out.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_ui import run_meta  # noqa: E402  (after the path set-up)
from tests import bombs  # noqa: E402
from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    choose,
    exceptions,
    goto,
    start_server,
    stop_server,
    wait_idle,
)

TARGET_MB = 1024
ENV = {"KF_HOSTED": "1", "KF_MEMORY_BUDGET_MB": "1500", "KF_MAX_UPLOAD_MB": "50"}


def status_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def make_bombs(folder: Path) -> list[tuple[str, Path, int]]:
    """(what, file, bytes it inflates to) for each bomb."""
    wide = bombs.header_line_csv(folder / "wide.csv")
    with open(wide, "rb") as src, gzip.open(folder / "wide.csv.gz", "wb") as dst:
        dst.write(src.read())
    wide.unlink()
    return [
        (".npz whose x deflates to 1.5 GB of zeros", bombs.npz_bomb(folder / "zeros.npz"), bombs.GIB_1_5),
        (".csv.gz inflating to 1.5 GB", bombs.csv_gz_bomb(folder / "rows.csv.gz"), bombs.GIB_1_5),
        ("100 MB single header line (.csv.gz)", folder / "wide.csv.gz", 100 * bombs.MIB),
        ("gzip IDX promising 1.5 GB, named .csv.gz", bombs.idx_gz_bomb(folder / "images.csv.gz"), bombs.GIB_1_5),
    ]


CONV_PROBE = """
import json, resource, sys
from kfcore.runs.limits import Limits, estimate_training_memory_mb, run_batches
from kfcore.spec import parse_spec
from kfcore.training.train import prepare, train
spec = parse_spec({"data": {"name": "digits"}, "split": {"validation": 0.1}, "train": {"epochs": 1, "batch_size": 1},
                   "layers": [{"type": "Conv2D", "filters": 4096, "kernel_size": 1},
                              {"type": "GlobalAveragePooling2D"}]})
limits = Limits(memory_budget_mb=int(sys.argv[1]))
ds, splits, report = prepare(spec, limits=limits)
import keras  # TensorFlow's own memory: the baseline
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
result = train(spec, limits=limits, dataset=ds)
n = int(splits.x_train.size)
print(json.dumps({"status": result.status, "batches": vars(run_batches(report, 1, n, limits)), "baseline_mb": base,
                  "estimate_mb": estimate_training_memory_mb(report, 1, n, limits),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
CONV_BUDGETS = (1 << 20, 1000, 400)


def wide_conv() -> list[dict]:
    rows = []
    for budget in CONV_BUDGETS:
        env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
        out = subprocess.run(
            [sys.executable, "-c", CONV_PROBE, str(budget)],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=600,
            check=True,
        )
        rows.append({"budget": budget, **json.loads(out.stdout.strip().splitlines()[-1])})
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="write the markdown report here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    meta = run_meta("bench_bombs.py")
    work = Path(tempfile.mkdtemp(prefix="kf-bombs-"))
    server = start_server(home=work / "kf", extra_env=ENV)
    rows = []
    try:
        files = make_bombs(work)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
            page = context.new_page()
            page.set_default_timeout(120_000)
            goto(page, "/data", timeout_s=120)
            start = status_mb(server.pid)
            print(f"server after the Data page: {start}", flush=True)
            for what, path, inflated in files:
                goto(page, "/data", timeout_s=120)
                choose(page, "dataset", "Upload a file (upload)")
                t0 = time.perf_counter()
                page.locator(".st-key-upload input[type=file]").set_input_files(str(path))
                page.locator('[data-testid="stAlertContentError"]').first.wait_for(timeout=120_000)
                wait_idle(page, timeout_s=120)
                seconds = time.perf_counter() - t0
                shown = page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
                mem = status_mb(server.pid)
                rows.append(
                    {
                        "what": what,
                        "file": path.name,
                        "size_mb": path.stat().st_size / 2**20,
                        "inflated_mb": inflated / 2**20,
                        "seconds": seconds,
                        "message": shown[0].split("\n")[-1] if shown else "",
                        "exceptions": len(exceptions(page)),
                        **mem,
                    }
                )
                print(rows[-1], flush=True)
            browser.close()
        alive = server.process.poll() is None
    finally:
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)

    conv = wide_conv()
    peak = max(r["VmHWM"] for r in rows)
    ok = alive and peak < TARGET_MB and all(r["message"] and not r["exceptions"] for r in rows)
    lines = [
        "## Memory bombs against a hosted server (hosted hardening)",
        "",
        f"    {meta['command']}",
        "",
        f"Measured {meta['date']} on {meta['cores']} cores ({meta['cpu']}), load average {meta['load_before']} "
        f"before; Streamlit {meta['streamlit']}. A real `streamlit run app.py` with "
        f"{', '.join(f'{k}={v}' for k, v in ENV.items())} (a 3 GB container's budget); each bomb uploaded through "
        "the Data page's file input in Chromium. The server's memory after the Data page first drew: "
        f"VmRSS {start['VmRSS']:.0f} MB, VmHWM {start['VmHWM']:.0f} MB.",
        "",
        "| bomb | file | inflates to | refused in (s) | server VmHWM after (MB) | VmRSS after (MB) "
        "| message on the page |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        message = r["message"].replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {r['what']} | {r['size_mb']:.1f} MB | {r['inflated_mb']:,.0f} MB | {r['seconds']:.1f} | "
            f"{r['VmHWM']:.0f} | {r['VmRSS']:.0f} | {message} |"
        )
    lines += [
        "",
        f"Target: the web server's peak RSS under {TARGET_MB} MB while every bomb is refused, no exception, the "
        f"server alive: {'met' if ok else 'NOT met'} (peak {peak:.0f} MB; server alive: {alive}).",
        "",
        "A wide 1×1 Conv2D (4096 filters, 1 MB of activations per sample) on digits at batch size 1, one epoch, "
        "in a fresh process per memory budget; the run's memory is its peak RSS above TensorFlow's own:",
        "",
        "| memory budget (MB) | evaluate / validation batch | estimate (MB) | run's memory (MB) | TensorFlow baseline "
        "(MB) |",
        "|---|---|---|---|---|",
    ]
    for r in conv:
        budget = "none (2^20)" if r["budget"] == CONV_BUDGETS[0] else f"{r['budget']:,}"
        b = r["batches"]
        lines.append(
            f"| {budget} | {b['evaluate']} / {b['validation']} | {r['estimate_mb']:,.0f} | "
            f"{r['peak_mb'] - r['baseline_mb']:,.0f} | {r['baseline_mb']:,.0f} |"
        )
    fits = all(r["peak_mb"] - r["baseline_mb"] <= r["estimate_mb"] for r in conv[1:])
    ok = ok and fits
    lines += ["", f"Every budgeted run stayed within its estimate: {'yes' if fits else 'NO'}.", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
