"""The Sweep page through AppTest: the trial count from the widgets, its refusals, a real sweep on the local pool
filling the table, the seed statistics, the filters that parcoords brushing stands for, and loading the best."""

import json
import time

import pytest

from kfcore.runs.store import RunStore
from kfcore.spec import RunSpec
from tests.app.helpers import go, open_app, shown

SWEEP = "app_pages/sweep.py"
TINY = {
    "data": {"source": "builtin", "name": "xor", "n": 60},
    "split": {"test": 0.2, "validation": 0.2, "seed": 0},
    "layers": [{"type": "Dense", "units": 4}],
    "train": {"epochs": 2, "batch_size": 16, "seed": 0},
}


@pytest.fixture
def kf_home(tmp_path, monkeypatch):
    home = tmp_path / "kf"
    monkeypatch.setenv("KF_HOME", str(home))
    yield home
    from ui import state

    state.shutdown_jobs()  # no worker process outlives its test


def sweep_page(kf_home):
    at = open_app()
    at.session_state["spec"] = RunSpec.from_dict(TINY)
    return go(at, SWEEP)


def markdown(at) -> str:
    return "\n".join(shown(m.value) for m in at.markdown)


def vary_learning_rate(at, values: str, repeats: int = 1):
    at.multiselect(key="sw_vary").select("train.learning_rate").run()
    at.text_input(key="sw_values_train_learning_rate").input(values).run()
    at.number_input(key="sw_repeats").set_value(repeats).run()
    assert not at.exception, [e.value for e in at.exception]


def test_the_page_counts_the_trials_and_refuses_a_bad_value_or_too_many(kf_home, monkeypatch):
    at = sweep_page(kf_home)
    assert at.button(key="sweep_start").disabled  # nothing varies yet
    assert "nothing varies" in "\n".join(shown(c.value) for c in at.caption)
    vary_learning_rate(at, "0.003, 0.03, 0.3", repeats=2)
    assert "6 trials (3 settings × 2 seeds)" in markdown(at) and not at.button(key="sweep_start").disabled
    at.multiselect(key="sw_vary").select("layers.0.units").run()
    at.text_input(key="sw_values_layers_0_units").input("4, 8").run()
    assert "12 trials (3 × 2 settings × 2 seeds)" in markdown(at)
    at.text_input(key="sw_values_layers_0_units").input("4, -8").run()
    assert "'layers.0.units' = -8" in "\n".join(shown(c.value) for c in at.caption)
    assert at.button(key="sweep_start").disabled
    monkeypatch.setenv("KF_MAX_TRIALS", "10")
    at.text_input(key="sw_values_layers_0_units").input("4, 8").run()
    errors = [shown(e.value) for e in at.error]
    assert any(
        "12 trials (3 × 2 settings × 2 seeds): over this server's limit of 10 trials per sweep" in e for e in errors
    ), errors
    assert at.button(key="sweep_start").disabled
    at.radio(key="sw_search").set_value("random").run()  # ranges instead of lists
    assert at.number_input(key="sw_min_train_learning_rate").value == pytest.approx(0.0001)
    assert "16 trials (8 random samples × 2 seeds)" in "\n".join(shown(e.value) for e in at.error)
    assert RunStore(kf_home).sweeps() == []


def test_a_sweep_from_the_page_fills_the_table_shows_the_seed_spread_and_loads_the_best(kf_home):
    at = sweep_page(kf_home)
    vary_learning_rate(at, "0.003, 0.05", repeats=2)
    at.button(key="sweep_start").click().run()
    store = RunStore(kf_home)
    (record,) = store.sweeps()
    assert at.session_state["sweep_id"] == record.id
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        trials = store.trials(record.id)
        if len(trials) == 4 and all(t.is_final for t in trials):
            break
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        time.sleep(0.5)
    else:
        pytest.fail("the sweep did not end in time")
    at.run()
    at.run()  # the fragment's rerun once the last trial ended
    assert all(t.status == "finished" and t.owner == at.session_state["owner"] for t in trials)
    table = next(d.value for d in at.dataframe if "trial" in d.value.columns)
    assert len(table) == 4 and set(table["run"]) == {t.id for t in trials}
    assert sorted(table["learning_rate"]) == [0.003, 0.003, 0.05, 0.05] and set(table["status"]) == {"finished"}
    seeds = next(d.value for d in at.dataframe if "seeds" in d.value.columns)
    assert list(seeds["seeds"]) == [2, 2] and seeds["vs the best"].iloc[0] == "best"
    assert all(" ± " in v for v in seeds["val_loss mean ± sd"])
    chart_ids = [c.proto.id for c in at.get("plotly_chart")]
    assert any(i.endswith("sweep_parcoords") for i in chart_ids) and any(i.endswith("sweep_bands") for i in chart_ids)

    # The filter beside the parallel coordinates: only the trials inside it in the table, drawn as the brush.
    at.slider(key="sw_filter_train_learning_rate").set_range(0.04, 0.05).run()
    table = next(d.value for d in at.dataframe if "trial" in d.value.columns)
    assert list(table["learning_rate"]) == [0.05, 0.05]
    spec = json.loads(next(c for c in at.get("plotly_chart") if c.proto.id.endswith("sweep_parcoords")).proto.spec)
    assert spec["data"][0]["dimensions"][0]["constraintrange"] == [0.04, 0.05]

    at.button(key="sweep_load_best").click().run()
    rows = {t.id: t for t in trials}
    best_setting = seeds["setting"].iloc[0]
    loaded = at.session_state["spec"]
    assert f"learning_rate={loaded.train.learning_rate:.3g}" == best_setting
    assert any(loaded.to_dict() == RunSpec.from_dict(rows[i].spec).to_dict() for i in rows)
    assert any("Loaded" in shown(s.value) for s in at.success)


def test_the_page_keeps_as_many_trials_in_flight_as_the_executor_trains_at_once(kf_home, monkeypatch):
    # On a Ray cluster that is what the cluster holds (RayExecutor.capacity), not this server's KF_MAX_CONCURRENT.
    from kfcore.runs.jobs import JobManager

    monkeypatch.setattr(JobManager, "capacity", lambda self: 3)
    at = open_app()
    at.session_state["spec"] = RunSpec.from_dict({**TINY, "train": {**TINY["train"], "epochs": 5000}})
    go(at, SWEEP)
    vary_learning_rate(at, "0.001, 0.002, 0.004, 0.008")
    at.button(key="sweep_start").click().run()
    store = RunStore(kf_home)
    (record,) = store.sweeps()
    wait_for_trials = time.monotonic() + 20
    while len(store.trials(record.id)) < 3 and time.monotonic() < wait_for_trials:
        time.sleep(0.1)
    trials = store.trials(record.id)
    assert len(trials) == 3 and not any(t.is_final for t in trials)  # three in flight, the fourth waits its turn
    at.button(key="sweep_stop").click().run()
    deadline = time.monotonic() + 60
    while not all(t.is_final for t in store.trials(record.id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(store.trials(record.id)) == 3 and all(t.status == "cancelled" for t in store.trials(record.id))


def test_a_stopped_sweep_says_how_many_trials_never_ran_and_resume_runs_just_those(kf_home):
    at = open_app()
    at.session_state["spec"] = RunSpec.from_dict({**TINY, "train": {**TINY["train"], "epochs": 3000}})
    go(at, SWEEP)
    vary_learning_rate(at, "0.001, 0.002, 0.004")
    at.button(key="sweep_start").click().run()
    store = RunStore(kf_home)
    (record,) = store.sweeps()
    at.button(key="sweep_stop").click().run()  # one trial in flight (one worker), two never submitted
    deadline = time.monotonic() + 60
    while not (store.trials(record.id) and all(t.is_final for t in store.trials(record.id))):
        assert time.monotonic() < deadline, "the stopped sweep's trial did not end"
        at.run()
        time.sleep(0.2)
    while not any("2 of its trials never ran" in shown(c.value) for c in at.caption):  # once its driver has ended
        assert time.monotonic() < deadline, [shown(c.value) for c in at.caption]
        at.run()
        time.sleep(0.2)
    assert len(store.trials(record.id)) == 1
    at.session_state["spec"] = RunSpec.from_dict(TINY)  # the editor moved on: the sweep resumes as it was defined
    at.button(key="sweep_resume").click().run()
    deadline = time.monotonic() + 150
    while len(store.trials(record.id)) < 3 or not all(t.is_final for t in store.trials(record.id)):
        assert time.monotonic() < deadline, "the resumed trials did not end"
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        time.sleep(0.5)
    first, *resumed = store.trials(record.id)
    assert first.status == "cancelled" and [t.status for t in resumed] == ["finished", "finished"]
    assert [t.spec["train"]["learning_rate"] for t in resumed] == [0.002, 0.004]
    assert all(t.spec["train"]["epochs"] == 3000 for t in resumed)
    at.run()
    at.run()
    assert not [b for b in at.button if b.key == "sweep_resume"]  # nothing left to resume
