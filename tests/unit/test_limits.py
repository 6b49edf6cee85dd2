"""Server limits: defaults per mode, environment overrides, refusals that name the limit, time and queue caps."""

import json
import os

import pytest

from kfcore.model.shapes import infer_shapes
from kfcore.runs.jobs import execute_run
from kfcore.runs.limits import LimitError, Limits, check_run
from kfcore.runs.store import RunStore
from kfcore.spec import parse_spec
from kfcore.training.train import prepare
from tests.unit.test_cli import run_cli, write_spec


def test_local_mode_has_only_a_memory_budget_and_hosted_mode_has_caps():
    local = Limits.from_env({})
    assert not local.hosted and local.max_epochs is None and local.max_runs_total is None
    assert local.memory_budget_mb > 0
    hosted = Limits.from_env({"KF_HOSTED": "1", "KF_MAX_EPOCHS": "5", "KF_MAX_PARAMS": "0"})
    assert hosted.hosted and hosted.max_epochs == 5 and hosted.max_params is None
    assert hosted.max_runs_per_session == 2 and hosted.max_upload_mb == 50


def test_a_malformed_variable_keeps_its_default_and_says_which_variable():
    hosted = Limits.from_env(
        {
            "KF_HOSTED": "1",
            "KF_MAX_EPOCHS": "lots",
            "KF_MAX_PARAMS": "-3",
            "KF_MAX_ROWS": "inf",
            "KF_MAX_RUNS_TOTAL": "4",
        }
    )
    assert hosted.max_epochs == 200 and hosted.max_params == 5_000_000 and hosted.max_rows == 200_000  # not lifted
    assert hosted.max_runs_total == 4  # the well-formed one still applies
    assert hosted.problems == (
        "KF_MAX_EPOCHS='lots' is not a whole number, so its default of 200 applies; set it to a whole number "
        "(0 = no limit)",
        "KF_MAX_PARAMS='-3' is not a whole number, so its default of 5,000,000 applies; set it to a whole number "
        "(0 = no limit)",
        "KF_MAX_ROWS='inf' is not a whole number, so its default of 200,000 applies; set it to a whole number "
        "(0 = no limit)",
    )
    local = Limits.from_env({"KF_MAX_EPOCHS": "lots"})
    assert local.max_epochs is None and local.problems[0].startswith(
        "KF_MAX_EPOCHS='lots' is not a whole number, so no limit applies"
    )
    assert Limits.from_env({"KF_HOSTED": "1", "KF_MAX_EPOCHS": "5"}).problems == ()


def test_a_malformed_switch_takes_the_stricter_side():
    typo = Limits.from_env({"KF_HOSTED": "ture", "KF_KERAS_DOWNLOADS": "nope"})
    assert typo.hosted and typo.max_epochs == 200 and not typo.keras_downloads
    assert typo.problems == (
        "KF_HOSTED='ture' is neither on nor off, so it counts as on; set it to 1 or 0",
        "KF_KERAS_DOWNLOADS='nope' is neither on nor off, so it counts as off; set it to 1 or 0",
    )
    assert not Limits.from_env({"KF_HOSTED": "off"}).hosted
    assert Limits.from_env({"KF_KERAS_DOWNLOADS": "yes"}).keras_downloads


def test_concurrency_is_read_with_the_other_limits(monkeypatch):
    from kfcore.runs.jobs import default_concurrency

    monkeypatch.setenv("KF_MAX_CONCURRENT", "3")
    assert Limits.from_env().max_concurrent == 3 and default_concurrency() == 3
    per_two_cores = max(1, (os.cpu_count() or 1) // 2)
    for unset in ("0", "two"):  # no cap given, or a malformed one: one run per two cores, as when unset
        monkeypatch.setenv("KF_MAX_CONCURRENT", unset)
        assert default_concurrency() == per_two_cores
    assert Limits.from_env().problems == (
        f"KF_MAX_CONCURRENT='two' is not a whole number, so its default of "
        f"{per_two_cores} applies; set it to a whole number (0 = the default)",
    )


def test_the_cli_warns_of_a_malformed_variable_and_trains_under_the_default(tmp_path, store_dir, monkeypatch):
    monkeypatch.setenv("KF_MAX_EPOCHS", "lots")
    monkeypatch.setenv("KF_HOSTED", "1")  # its default: 200 epochs
    out = run_cli("train", write_spec(tmp_path, {"train": {"epochs": 201}}), "--store", store_dir, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.splitlines()
    assert lines[0].startswith("warning: KF_MAX_EPOCHS='lots' is not a whole number, so its default of 200 applies")
    assert lines[1].startswith("error: 201 epochs is over this server's limit of 200")


def _report(spec):
    return infer_shapes(spec.layers, (8, 8, 1), "multiclass", 10)


def test_each_limit_is_named_in_the_refusal():
    spec = parse_spec({"layers": [{"type": "Dense", "units": 4096}], "train": {"epochs": 50}})
    limits = Limits(max_epochs=10, max_params=1000, max_rows=100, memory_budget_mb=1 << 20)
    with pytest.raises(LimitError) as err:
        check_run(spec, _report(spec), 1797, 1797 * 64, limits)
    message = str(err.value)
    assert "50 epochs is over this server's limit of 10" in message
    assert "over this server's limit of 1,000" in message and "fewer units" in message
    assert "1,797 rows" in message


def test_model_too_big_for_memory_is_refused_before_training():
    spec = parse_spec({"layers": [{"type": "Dense", "units": 65536}, {"type": "Dense", "units": 65536}]})
    with pytest.raises(LimitError, match="MB of memory"):
        prepare(spec, limits=Limits(memory_budget_mb=4096))


def test_cli_refuses_over_budget_with_exit_2(tmp_path, store_dir, monkeypatch):
    monkeypatch.setenv("KF_MEMORY_BUDGET_MB", "1")
    out = run_cli(
        "train", write_spec(tmp_path, {"layers": [{"type": "Dense", "units": 4096}]}), "--store", store_dir, timeout=60
    )
    assert out.returncode == 2 and "MB of memory" in out.stderr and "Traceback" not in out.stderr


def test_time_limit_stops_a_run_and_says_so(store_dir):
    store = RunStore(store_dir)
    spec = {"data": {"source": "builtin", "name": "digits"}, "train": {"epochs": 1000, "batch_size": 8}}
    run_id = store.create_run(spec)
    store.start_in_process(run_id)
    result = execute_run(store, run_id, limits=Limits(max_seconds_per_run=3))
    record = store.get(run_id)
    assert result.status == "cancelled" and record.status == "failed"
    assert "time limit of 3 s" in record.error


def test_concurrent_run_caps_per_session_and_in_total(store_dir, monkeypatch):
    from kfcore.runs.jobs import JobManager

    monkeypatch.setenv("KF_MAX_RUNS_PER_SESSION", "1")
    monkeypatch.setenv("KF_MAX_RUNS_TOTAL", "2")
    manager = JobManager(RunStore(store_dir), max_concurrent=1, prestart=False)
    manager._ensure_workers = lambda want=None: None  # keep runs queued: this test is about admission only
    try:
        spec = parse_spec({"data": {"source": "builtin", "name": "iris"}})
        manager.submit(spec, owner="alice")
        with pytest.raises(LimitError, match=r"you already have 1 run\(s\)"):
            manager.submit(spec, owner="alice")
        manager.submit(spec, owner="bob")
        with pytest.raises(LimitError, match="server is busy"):
            manager.submit(spec, owner="carol")
    finally:
        manager.shutdown()
    assert json.dumps(RunStore(store_dir).counts())


def test_hosted_server_reads_only_uploads_and_builtins(tmp_path):
    from kfcore.runs.limits import check_data_access
    from kfcore.spec import DataSpec

    hosted, local = Limits(hosted=True), Limits()
    store = RunStore(tmp_path)
    uploads = store.uploads_dir
    (uploads / "0123456789abcdef").mkdir(parents=True)
    store.add_upload("alice", "0123456789abcdef/data.csv", "data.csv")
    for inside in ("0123456789abcdef/data.csv", str(uploads / "0123456789abcdef" / "data.csv")):  # old specs: a path
        check_data_access(DataSpec(source="csv", path=inside, target="y"), hosted, store, "alice")
    check_data_access(DataSpec(source="builtin", name="iris"), hosted, store, None)
    for sneaky in (
        "/etc/passwd",
        str(uploads / ".." / "runs.sqlite"),
        str(uploads / "abc" / ".." / ".." / "x.csv"),
        "0123456789abcdef/../../runs.sqlite",
        "data.csv",
    ):
        with pytest.raises(LimitError, match="uploaded on the Data page"):
            check_data_access(DataSpec(source="csv", path=sneaky, target="y"), hosted, store, "alice")
    with pytest.raises(LimitError):
        check_data_access(
            DataSpec(source="idx", images="0123456789abcdef/data.csv", labels="/etc/hosts"), hosted, store, "alice"
        )
    check_data_access(DataSpec(source="csv", path="/etc/passwd", target="y"), local, store, None)  # a local user's own


def test_keras_downloads_can_be_turned_off_in_either_mode(tmp_path):
    from kfcore.runs.limits import check_data_access
    from kfcore.spec import DataSpec

    store = RunStore(tmp_path)
    mnist = DataSpec(source="keras", name="mnist")
    assert Limits.from_env({}).keras_downloads and Limits.from_env({"KF_HOSTED": "1"}).keras_downloads
    check_data_access(mnist, Limits.from_env({"KF_HOSTED": "1"}), store, None)
    for env in ({"KF_KERAS_DOWNLOADS": "0"}, {"KF_KERAS_DOWNLOADS": "off", "KF_HOSTED": "1"}):
        limits = Limits.from_env(env)
        assert not limits.keras_downloads
        with pytest.raises(LimitError, match=r"does not download Keras datasets \(KF_KERAS_DOWNLOADS=0\).*'mnist'"):
            check_data_access(mnist, limits, store, None)
        check_data_access(DataSpec(source="builtin", name="digits"), limits, store, None)


def test_worker_refuses_a_hosted_run_that_reads_server_files(store_dir, monkeypatch):
    monkeypatch.setenv("KF_HOSTED", "1")
    store = RunStore(store_dir)
    run_id = store.create_run({"data": {"source": "csv", "path": "/etc/passwd", "target": "root"}})
    store.start_in_process(run_id)
    result = execute_run(store, run_id)
    assert result.status == "failed" and "uploaded on the Data page" in store.get(run_id).error


def test_an_imported_run_is_read_only_but_its_importer_may_delete_it():
    from kfcore.runs.limits import can_delete, can_modify
    from kfcore.runs.store import RunRecord

    local, hosted = Limits.from_env({}), Limits.from_env({"KF_HOSTED": "1"})
    imported = RunRecord(
        id="i", name="i", spec={}, status="finished", created=0.0, owner="me", imported={"run": "x", "file": "b.zip"}
    )
    assert not can_modify(imported, "me", local) and not can_modify(imported, "me", hosted)
    assert can_delete(imported, "anyone", local)
    assert can_delete(imported, "me", hosted) and not can_delete(imported, "someone-else", hosted)
    assert not can_delete(imported, None, hosted)
