"""Sweeps without training: the definition, the planner's counts, dotted paths and their refusals, the trial limit,
ASHA's rule (Ray Tune's own bracket as the oracle), the store's sweep column and the seed statistics."""

import json
import math
import sqlite3
import statistics
import threading
import time
from types import SimpleNamespace

import pytest

from kfcore.runs import sweep as sw
from kfcore.runs.limits import Limits
from kfcore.runs.store import RunStore
from kfcore.runs.sweepresults import best, seed_stats, trial_row
from kfcore.runs.sweeprun import Asha, create, run_local, untried

BASE = {
    "data": {"source": "builtin", "name": "xor", "n": 40},
    "layers": [{"type": "Dense", "units": 8}, {"type": "Dropout", "rate": 0.1}],
    "train": {"epochs": 2, "seed": 5},
}


def parse(**keys):
    return sw.parse_sweep({"base": BASE, **keys})


def test_a_grid_counts_every_combination_and_repeats_multiply_it_by_the_seeds():
    s = parse(
        grid={
            "train.learning_rate": [0.003, 0.03],
            "layers.0.units": [8, 32],
            "train.optimizer": ["adam", "sgd", "rmsprop"],
        }
    )
    assert s.trial_count == 12 and len(sw.settings(s)) == 12
    assert sw.settings(s)[0] == {"train.learning_rate": 0.003, "layers.0.units": 8, "train.optimizer": "adam"}
    assert len({json.dumps(v, sort_keys=True) for v in sw.settings(s)}) == 12
    r = parse(grid={"layers.1.rate": [0.0, 0.5]}, repeats=3)
    assert r.trial_count == 6 and sw.describe_count(r) == "6 trials (2 settings × 3 seeds)"
    trials = [t for setting in sw.settings(r) for t in sw.with_seeds(r, setting)]
    assert [t["train.seed"] for t in trials] == [5, 6, 7, 5, 6, 7]  # from the base's seed on
    assert sw.trial_spec(r, trials[4]).layers[1].rate == 0.5 and sw.trial_spec(r, trials[4]).train.seed == 6
    seeds_only = parse(repeats=4)  # "Repeat × 4 seeds" alone is a sweep over the seed
    assert seeds_only.trial_count == 4 and seeds_only.swept == ["train.seed"]


def test_a_random_search_draws_its_samples_inside_the_ranges_the_same_way_each_time():
    space = {
        "train.learning_rate": {"min": 1e-4, "max": 1e-1, "log": True},
        "layers.0.units": {"min": 4, "max": 64},
        "train.batch_size": [16, 32],
        "layers.1.rate": {"min": 0.0, "max": 0.5},
    }
    s = parse(random=space, samples=40, seed=3)
    drawn = sw.settings(s)
    assert s.trial_count == 40 and len(drawn) == 40 and drawn == sw.settings(parse(random=space, samples=40, seed=3))
    assert drawn != sw.settings(parse(random=space, samples=40, seed=4))
    lrs = [d["train.learning_rate"] for d in drawn]
    assert all(1e-4 <= v <= 1e-1 for v in lrs)
    assert sum(v < 1e-2 for v in lrs) > 15  # log-uniform: two of three decades lie below 0.01
    assert all(isinstance(d["layers.0.units"], int) and 4 <= d["layers.0.units"] <= 64 for d in drawn)
    assert {d["train.batch_size"] for d in drawn} == {16, 32}
    assert all(0.0 <= d["layers.1.rate"] <= 0.5 for d in drawn)
    for d in drawn:
        sw.trial_spec(s, d)  # every drawn trial is a valid spec


def test_an_optuna_search_counts_its_samples_and_refuses_repeats_and_samples_are_required():
    s = parse(optuna={"train.learning_rate": {"min": 1e-4, "max": 1e-1, "log": True}}, samples=7)
    assert s.trial_count == 7 and s.search == "optuna"
    with pytest.raises(sw.SweepError, match='"repeats" works with a grid or random search'):
        parse(optuna={"train.learning_rate": [0.01, 0.1]}, samples=4, repeats=2)
    with pytest.raises(sw.SweepError, match='needs "samples"'):
        parse(random={"train.learning_rate": [0.01, 0.1]})
    with pytest.raises(sw.SweepError, match='"samples" is for a random or optuna search'):
        parse(grid={"train.learning_rate": [0.01, 0.1]}, samples=3)


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ({"train.lr": [0.1]}, "'train.lr': train has no field 'lr'; its fields are optimizer, learning_rate"),
        ({"layers.5.units": [8]}, "'layers.5.units': the base spec has 2 layer(s), numbered from 0"),
        ({"layers.1.units": [8]}, "'layers.1.units': a Dropout layer has no field 'units'; its fields are rate"),
        ({"layers.units": [8]}, "a layer's field is layers.<index>.<field>"),
        ({"model.units": [8]}, "'model.units' is not a hyperparameter path"),
        ({"train.learning_rate": [-1]}, "'train.learning_rate' = -1: train.learning_rate: must be above 0"),
        ({"train.optimizer": ["adamx"]}, "'train.optimizer' = \"adamx\": train.optimizer: unknown value 'adamx'"),
        ({"layers.1.rate": [1.5]}, "'layers.1.rate' = 1.5"),
        ({"train.learning_rate": [0.1, 0.1]}, "lists a value twice"),
        ({"train.learning_rate": []}, "give a list of values"),
        ({"train.learning_rate": {"min": 0.1, "max": 0.2}}, "a grid takes a list of values"),
    ],
)
def test_a_bad_path_or_value_is_refused_naming_it(space, expected):
    with pytest.raises(sw.SweepError) as e:
        parse(grid=space)
    assert expected in str(e.value)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"random": {"train.optimizer": {"min": 1, "max": 2}}, "samples": 2}, "is not a number: give it a list"),
        ({"random": {"train.learning_rate": {"min": 0.2, "max": 0.1}}, "samples": 2}, "must be below its max"),
        ({"random": {"train.learning_rate": {"min": 0, "max": 0.1, "log": True}}, "samples": 2}, "a log range needs"),
        (
            {"random": {"train.learning_rate": {"min": 0.001, "max": 20.0}}, "samples": 2},
            "'train.learning_rate' = 20.0",
        ),
        ({"grid": {"train.seed": [1, 2]}, "repeats": 2}, "both vary the seed"),
        ({"grid": {}}, "nothing varies"),
        ({"grid": {"train.epochs": [3]}, "early_stop": "hyperband"}, '"early_stop" is "hyperband"'),
        ({"grid": {"train.epochs": [3]}, "metric": "f1"}, '"metric" is "f1"'),
        ({"grid": {"train.epochs": [3]}, "repeats": 0}, '"repeats" is 0: give a whole number from 1'),
        ({"grid": {"train.epochs": [3]}, "rgid": {}}, "unknown key 'rgid'"),
        ({"grid": {"train.epochs": [3]}, "random": {}}, "both 'grid' and 'random'"),
    ],
)
def test_a_bad_sweep_definition_is_refused_saying_what_to_do(keys, expected):
    with pytest.raises(sw.SweepError) as e:
        parse(**keys)
    assert expected in str(e.value)


def test_a_sweep_file_without_a_base_or_with_a_bad_base_or_not_json_is_refused():
    with pytest.raises(sw.SweepError, match='no "base"'):
        sw.parse_sweep({"grid": {"train.epochs": [1, 2]}})
    with pytest.raises(sw.SweepError, match="^base: .*layers"):
        sw.parse_sweep({"base": {**BASE, "layers": "dense"}, "grid": {"train.epochs": [1, 2]}})
    with pytest.raises(sw.SweepError, match="sweep file"):
        sw.load_sweep(b"{not json")
    with pytest.raises(sw.SweepError, match="JSON object"):
        sw.load_sweep(b"[1, 2]")


def test_a_sweep_round_trips_through_its_dict():
    for s in (
        parse(grid={"train.learning_rate": [0.003, 0.03]}, repeats=2, name="lr"),
        parse(
            random={"layers.0.units": {"min": 4, "max": 64}, "train.optimizer": ["adam", "sgd"]},
            samples=5,
            seed=9,
            early_stop="asha",
            metric="val_accuracy",
        ),
    ):
        again = sw.parse_sweep(json.loads(json.dumps(s.to_dict())))
        assert again == s and sw.settings(again) == sw.settings(s)


def test_more_trials_than_the_limit_are_refused_before_the_sweep_is_stored(tmp_path):
    store = RunStore(tmp_path)
    big = parse(
        grid={"train.learning_rate": [0.001, 0.003, 0.01, 0.03, 0.1], "layers.0.units": [4, 8, 16, 32]}, repeats=3
    )
    with pytest.raises(sw.SweepError) as e:
        create(store, big, limits=Limits.from_env({"KF_MAX_TRIALS": "50"}))
    assert str(e.value) == (
        "this sweep makes 60 trials (5 × 4 settings × 3 seeds), over this server's limit of 50 "
        "trials per sweep (KF_MAX_TRIALS): give fewer values, samples or repeats"
    )
    with pytest.raises(sw.SweepError, match="limit of 16 trials per sweep"):  # hosted mode's default
        create(store, big, limits=Limits.from_env({"KF_HOSTED": "1"}))
    assert store.sweeps() == []
    sweep_id = create(store, big, limits=Limits.from_env({"KF_MAX_TRIALS": "0"}))  # 0: no limit
    assert [s.id for s in store.sweeps()] == [sweep_id] and store.get_sweep(sweep_id).definition == big.to_dict()
    assert Limits.from_env({}).max_trials == 256


def test_asha_stops_a_trial_exactly_when_ray_tunes_bracket_does():
    from ray.tune.schedulers.async_hyperband import _Bracket
    from ray.tune.schedulers.trial_scheduler import TrialScheduler

    rewards = [0.61, 0.40, 0.75, 0.52, 0.52, 0.90, 0.10, 0.66, 0.71, 0.3]
    bracket = _Bracket(min_t=1, max_t=9, reduction_factor=sw.ASHA_ETA, s=0)
    ours, earlier = [], []
    for i, reward in enumerate(rewards):
        theirs = bracket.on_result(SimpleNamespace(trial_id=str(i)), 1, reward)
        ours.append(sw.asha_stops(reward, earlier, "max"))
        earlier.append(reward)
        assert ours[-1] == (theirs == TrialScheduler.STOP), (i, reward)
    assert any(ours) and not all(ours)
    assert sw.asha_stops(0.9, [0.3, 0.4, 0.5], "min") and not sw.asha_stops(0.2, [0.3, 0.4, 0.5], "min")
    assert sw.asha_rungs(30) == [1, 3, 9, 27]


def test_the_local_asha_cancels_a_lagging_trial_with_the_reason(tmp_path):
    store = RunStore(tmp_path)
    s = parse(grid={"train.learning_rate": [0.001, 0.01, 0.1]}, early_stop="asha")
    asha = Asha(s)
    runs = []
    for loss in (0.30, 0.35, 0.80):
        run_id = store.create_run(sw.trial_spec(s, {}).to_dict(), sweep="s1")
        store.start_in_process(run_id)
        store.append_epoch(run_id, 1, {"loss": loss, "val_loss": loss})
        asha.look(store, store.get(run_id))
        runs.append(run_id)
    assert [store.cancel_requested(r) for r in runs] == [False, True, True]
    store.mark_cancelled(runs[2])  # what the worker does when it sees the flag: the reason stays
    assert store.get(runs[2]).error == (
        "stopped early by ASHA at epoch 1: its val_loss of 0.8 was not within the "
        "best third of the trials that reached that epoch"
    )


def test_an_old_store_gains_the_sweep_column_and_trials_are_listed_by_sweep(tmp_path):
    con = sqlite3.connect(tmp_path / "runs.sqlite")  # a store made before sweeps existed
    con.execute(
        "CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT "
        "NULL, created REAL NOT NULL, started REAL, finished REAL, owner TEXT, host TEXT, pid INTEGER, "
        "cancel_requested INTEGER NOT NULL DEFAULT 0, hardware TEXT, info TEXT, progress TEXT, error TEXT, "
        "test TEXT, evaluation TEXT, model_path TEXT)"
    )
    con.execute("INSERT INTO runs (id, name, spec, status, created) VALUES ('old1', 'old', '{}', 'finished', 1.0)")
    con.commit()
    con.close()
    store = RunStore(tmp_path)
    assert store.get("old1").sweep is None
    a = store.create_run({}, sweep="s1")
    b = store.create_run({}, sweep="s1")
    store.create_run({})
    assert [r.id for r in store.trials("s1")] == [a, b] and store.get(a).sweep == "s1"
    assert set(store.epochs_of([a, b])) == {a, b}


def test_seed_statistics_match_the_statistics_module_and_the_best_trial_is_the_lowest_loss(tmp_path):
    s = parse(grid={"train.learning_rate": [0.01, 0.1]}, repeats=3)
    store = RunStore(tmp_path)
    losses = {0.01: [0.5, 0.7, 0.6], 0.1: [0.2, 0.9, 0.4]}
    rows = []
    for lr, values in losses.items():
        for seed, loss in zip(s.seeds(), values, strict=True):
            run_id = store.create_run(sw.trial_spec(s, {"train.learning_rate": lr, "train.seed": seed}).to_dict())
            store.start_in_process(run_id)
            store.append_epoch(run_id, 1, {"val_loss": 9.0})
            store.append_epoch(run_id, 2, {"val_loss": loss})
            store.finish(run_id, {"loss": loss}, {}, None)
            rows.append(trial_row(s, store.get(run_id), store.epochs(run_id)))
    assert rows[0]["values"] == {"train.learning_rate": 0.01, "train.seed": 5} and rows[0]["val_loss"] == 0.5
    stats = seed_stats(s, rows)
    assert [st.setting for st in stats] == [{"train.learning_rate": 0.1}, {"train.learning_rate": 0.01}]
    for st, values in zip(stats, (losses[0.1], losses[0.01]), strict=True):
        assert math.isclose(st.mean, statistics.mean(values)) and math.isclose(st.sd, statistics.stdev(values))
        assert (st.low, st.high, st.n) == (min(values), max(values), 3)
    assert stats[0].overlaps(stats[1])  # 0.5 ± 0.36 against 0.6 ± 0.1: within the noise
    assert best(s, rows)["val_loss"] == 0.2


def test_the_sweep_figures_band_the_seeds_axis_the_choices_and_thin_long_curves():
    from kfcore.present import plots

    seeds = [
        [{"epoch": 1, "val_loss": 1.0}, {"epoch": 2, "val_loss": 0.5}],
        [{"epoch": 1, "val_loss": 0.8}, {"epoch": 2, "val_loss": 0.7}],
    ]
    band, mean = plots.seed_bands([("lr=0.1", seeds)], "val_loss").data
    assert list(band.x) == [1, 2, 2, 1] and list(band.y) == [1.0, 0.7, 0.5, 0.8]  # max out, min back
    assert list(mean.y) == pytest.approx([0.9, 0.6]) and "mean of 2 seeds" in mean.name
    rows = [
        {"values": {"train.optimizer": "sgd", "train.learning_rate": 0.1}, "val_loss": 0.4, "status": "finished"},
        {"values": {"train.optimizer": "adam", "train.learning_rate": 0.01}, "val_loss": 0.2, "status": "cancelled"},
        {"values": {"train.optimizer": "<b>x</b>", "train.learning_rate": 0.01}, "val_loss": None, "status": "failed"},
        # Still training: its latest epoch is no score yet (and redrawing the chart every second taxed browsers).
        {"values": {"train.optimizer": "rmsprop", "train.learning_rate": 0.02}, "val_loss": 0.3, "status": "running"},
    ]
    (coords,) = plots.sweep_parcoords(
        rows, ["train.optimizer", "train.learning_rate"], "val_loss", {"train.learning_rate": (0.005, 0.05)}
    ).data
    optimizer, lr, score = coords.dimensions
    # The unscored trial and the one still training are left out.
    assert list(optimizer.ticktext) == ["adam", "sgd"] and list(optimizer.values) == [1, 0]
    assert list(lr.constraintrange) == [0.005, 0.05] and list(score.values) == [0.4, 0.2]
    # The first trial to end alone: each axis one labelled tick in its middle, and a colour scale around its score.
    (alone,) = plots.sweep_parcoords(rows[:1], ["train.learning_rate"], "val_loss").data
    lr_axis, score_axis = alone.dimensions
    assert list(lr_axis.range) == pytest.approx([0.05, 0.15]) and list(lr_axis.ticktext) == ["0.1"]
    assert list(score_axis.range) == pytest.approx([0.2, 0.6])
    assert (alone.line.cmin, alone.line.cmax) == pytest.approx((0.2, 0.6))
    long = [{"epoch": e, "val_loss": 1 / e} for e in range(1, 1001)]
    (curve,) = [t for t in plots.compare_curves([("t", long, None)], "loss", max_points=200).data]
    assert len(curve.x) == 200 and curve.x[0] == 1 and curve.x[-1] == 1000


@pytest.mark.parametrize(
    "keys",
    [
        {"grid": {"train.learning_rate": [0.001, 0.01, 0.1, 0.3]}},
        {"optuna": {"train.learning_rate": {"min": 0.001, "max": 0.3, "log": True}}, "samples": 4},
    ],
    ids=["grid", "optuna"],
)
def test_a_resumed_sweep_submits_only_the_trials_it_never_did(tmp_path, keys):
    store = RunStore(tmp_path)
    s = parse(**keys)
    sweep_id = create(store, s)

    def submit(spec, name, sweep):  # a trial that ends at once, its score its learning rate
        run_id = store.create_run(spec.to_dict(), name=name, sweep=sweep)
        store.start_in_process(run_id)
        store.append_epoch(run_id, 1, {"val_loss": spec.train.learning_rate})
        store.finish(run_id, {"loss": spec.train.learning_rate}, {}, None)
        return run_id

    # Its driver stopped after two trials (Stop, or the server restarted).
    before = [submit(sw.trial_spec(s, {"train.learning_rate": lr}), "t", sweep_id) for lr in (0.001, 0.1)]
    assert untried(store, sweep_id, s) == 2
    ended = run_local(store, sweep_id, s, submit, parallel=2, poll_s=0.01, resume=True)
    assert len(ended) == 2 and untried(store, sweep_id, s) == 0
    assert [t.id for t in store.trials(sweep_id)][:2] == before
    rates = sorted(r.spec["train"]["learning_rate"] for r in ended)
    if "grid" in keys:
        assert rates == [0.01, 0.3]  # the two settings it had no trial for
    else:
        assert all(0.001 <= r <= 0.3 for r in rates)


def test_a_resumed_asha_sweep_judges_new_trials_against_the_ended_ones(tmp_path):
    store = RunStore(tmp_path)
    s = parse(grid={"train.learning_rate": [0.3, 0.35, 0.8]}, early_stop="asha")
    sweep_id = create(store, s)
    for lr in (0.3, 0.35):  # two trials ended before its driver stopped: ASHA's rung 1 saw 0.3 and 0.35
        run_id = store.create_run(sw.trial_spec(s, {"train.learning_rate": lr}).to_dict(), sweep=sweep_id)
        store.start_in_process(run_id)
        store.append_epoch(run_id, 1, {"val_loss": lr})
        store.finish(run_id, {"loss": lr}, {}, None)
    submitted = []

    def submit(spec, name, sweep):  # a trial that has trained one epoch, its val_loss its learning rate
        run_id = store.create_run(spec.to_dict(), name=name, sweep=sweep)
        store.start_in_process(run_id)
        store.append_epoch(run_id, 1, {"val_loss": spec.train.learning_rate})
        submitted.append(run_id)
        return run_id

    def worker():  # stops the trial when asked, as a worker does at its next epoch; else it ends in 5 s
        give_up = time.monotonic() + 5
        while not submitted or not store.get(submitted[0]).is_final:
            if submitted and store.cancel_requested(submitted[0]):
                store.mark_cancelled(submitted[0])
            elif submitted and time.monotonic() > give_up:
                store.finish(submitted[0], {}, {}, None)
            time.sleep(0.01)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    run_local(store, sweep_id, s, submit, poll_s=0.01, resume=True)
    thread.join(10)
    (last,) = submitted
    assert store.get(last).status == "cancelled" and "stopped early by ASHA at epoch 1" in store.get(last).error
