"""A table's recipe on the pages: the Data page lists it per column, and the Evaluate page's "Type feature values"
asks for the raw columns (categories picked from the training ones) and predicts through the recipe."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kfcore.runs.store import RunStore
from kfcore.spec import RunSpec
from tests.app.helpers import go, open_app
from tests.app.test_evaluate_runs import REPO, TRAIN

EVALUATE, DATA = "app_pages/evaluate.py", "app_pages/data.py"


@pytest.fixture(scope="module")
def kf_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("kf")
    rng = np.random.default_rng(4)
    n = 200
    shop = rng.choice(["north", "south", "east"], n).astype(object)
    age = rng.integers(18, 80, n).astype(float)
    label = np.where((shop == "north") ^ (age > 50), "yes", "no")
    age[::13] = np.nan
    shop[::17] = None
    path = home / "shops.csv"
    pd.DataFrame({"customer": [f"c{i}" for i in range(n)], "age": age, "shop": shop, "label": label}).to_csv(
        path, index=False
    )
    specs = {
        "shops run": {
            "data": {"source": "csv", "path": str(path), "target": "label"},
            "split": {"test": 0.25, "validation": 0.1, "seed": 3},  # not the default split
            "layers": [{"type": "Dense", "units": 8, "activation": "relu"}],
            "train": {"epochs": 3},
        }
    }
    out = subprocess.run(
        [sys.executable, "-c", TRAIN, str(home), json.dumps(specs)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KF_HOME", str(home))
        yield home
        from ui import state

        state.shutdown_jobs()


def test_the_data_page_lists_the_recipe_of_a_table(kf_home):
    record = RunStore(kf_home).list_runs()[0]
    at = open_app({"spec": RunSpec.from_dict(record.spec).to_url()}, timeout_s=60)
    go(at, DATA)
    table = next(d.value for d in at.dataframe if "preparation" in d.value.columns)
    assert table["column"].tolist() == ["customer", "age", "shop", "label"]
    assert table["kind"].tolist() == ["dropped", "number", "category", "target"]
    assert "one per row (an ID or a name?)" in table["preparation"].iloc[0]
    assert "training median" in table["preparation"].iloc[1]


def test_try_it_takes_raw_column_values_and_predicts_through_the_recipe(kf_home):
    record = RunStore(kf_home).list_runs()[0]
    at = open_app(timeout_s=60)
    go(at, EVALUATE)
    at.selectbox(key="eval_run").select(record.id).run()
    assert not at.exception and not [w.value for w in at.warning if "cannot" in w.value]
    at.button_group(key="try_source").set_value("Type feature values").run()
    editor = next(d for d in at.dataframe if d.proto.editing_mode)  # st.data_editor
    assert list(editor.value.columns) == ["age", "shop"]  # the raw columns: no 'shop=north', no dropped 'customer'
    columns = json.loads(editor.proto.columns)
    assert columns["shop"]["type_config"] == {"type": "selectbox", "options": ["east", "north", "south"]}
    at.button(key="try_predict").click().run(timeout=120)
    assert not at.error, [e.value for e in at.error]
    assert any(m.value.startswith("Prediction: **") for m in at.markdown)


def test_a_table_runs_downloads_are_zips_with_the_data_file_and_the_recipe(kf_home):
    import io
    import zipfile

    from kfcore.data.uploads import resolve
    from kfcore.export import script as export

    record = RunStore(kf_home).list_runs()[0]
    at = open_app(timeout_s=60)
    go(at, EVALUATE)
    at.selectbox(key="eval_run").select(record.id).run()
    buttons = {b.id.rsplit("-", 1)[-1]: b for b in at.get("download_button")}
    for key in ("download_script", "download_model"):  # built on click (a deferred file): the ZIPs below
        assert buttons[key].proto.deferred_file_id and not buttons[key].proto.disabled
    assert any("zipped with the data file it reads" in c.value and "recipe.json" in c.value for c in at.caption)
    spec = RunSpec.from_dict(record.spec)
    spec.data = resolve(spec.data, RunStore(kf_home).uploads_dir)
    with zipfile.ZipFile(io.BytesIO(export.script_zip(spec, record.name))) as archive:
        assert sorted(archive.namelist()) == ["shops.csv", "train.py"]
    with zipfile.ZipFile(io.BytesIO(export.files_zip(export.model_files(record.model_path)))) as archive:
        assert sorted(archive.namelist()) == ["model.keras", "recipe.json"]
