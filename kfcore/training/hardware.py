"""What hardware a run uses and why: devices, GPU memory growth, mixed precision, multi-GPU strategy, XLA.

`describe_host()` is cheap and TensorFlow-free (for the web process's sidebar); `configure()` runs in
the training process, sets TensorFlow up and returns the strategy plus a record of every choice.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import shutil
import subprocess
from typing import Any


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def describe_host() -> dict[str, Any]:
    """CPU and GPU names without importing TensorFlow (nvidia-smi when present)."""
    gpus: list[str] = []
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
            gpus = [line.strip() for line in out.splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError):
            gpus = []
    return {"cpu": _cpu_name(), "cpu_cores": os.cpu_count() or 1, "gpus": gpus}


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence file descriptor 2 while TensorFlow starts: its C++ start-up logs (oneDNN, CUDA probing)
    ignore TF_CPP_MIN_LOG_LEVEL and would bury the CLI's own output. Python errors still propagate."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def configure(mixed_precision: bool | None = None) -> tuple[Any, dict[str, Any]]:
    """Set TensorFlow up for this process and say what was chosen.

    mixed_precision: None = on when every GPU can use it (compute capability ≥ 7.0), False = never.
    Returns (strategy or None, info dict stored with the run).
    """
    with quiet_native_stderr():
        import keras
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    info: dict[str, Any] = {"cpu": _cpu_name(), "cpu_cores": os.cpu_count() or 1, "tensorflow": tf.__version__}
    gpu_info = []
    capable = bool(gpus)
    for gpu in gpus:
        try:
            # Without growth TensorFlow grabs all GPU memory at once, starving other workers on the card.
            tf.config.experimental.set_memory_growth(gpu, True)
            growth = True
        except RuntimeError:  # already initialised in this process: the setting from the first run stands
            growth = tf.config.experimental.get_memory_growth(gpu)
        details = tf.config.experimental.get_device_details(gpu)
        cc = details.get("compute_capability")
        capable = capable and bool(cc) and tuple(cc) >= (7, 0)
        gpu_info.append(
            {"name": details.get("device_name", gpu.name), "compute_capability": cc, "memory_growth": growth}
        )
    info["gpus"] = gpu_info

    use_mp = capable if mixed_precision is None else (mixed_precision and capable)
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mp else "float32")
    if use_mp:
        info["mixed_precision"] = "on: mixed_float16 on GPUs with compute capability ≥ 7.0; output layer kept float32"
    elif gpus:
        info["mixed_precision"] = (
            "off: a GPU below compute capability 7.0 gains nothing from float16"
            if mixed_precision is None
            else "off: turned off"
        )
    else:
        info["mixed_precision"] = "off: float16 is slower than float32 on CPUs"

    strategy = None
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        info["device"] = f"{len(gpus)} GPUs ({gpu_info[0]['name']}), MirroredStrategy"
        info["strategy"] = f"MirroredStrategy over {len(gpus)} GPUs: each batch is split across them"
    elif gpus:
        info["device"] = f"GPU: {gpu_info[0]['name']}"
        info["strategy"] = "one GPU: default strategy"
    else:
        info["device"] = f"CPU: {info['cpu']} ({info['cpu_cores']} cores)"
        info["strategy"] = "CPU: default strategy"

    info["threads"] = {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads() or f"auto ({info['cpu_cores']})",
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads() or "auto",
    }
    return strategy, info
