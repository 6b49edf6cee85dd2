"""Images by folder: a ZIP with one folder per class becomes a labelled image set at the size and colour the person
picked, and hostile ZIPs (bombs, traversal names, floods of files, nested archives, pixel bombs) are refused or
skipped from what their directory and headers declare, before memory of the promised size is spent."""

from __future__ import annotations

import tracemalloc
import zipfile

import numpy as np
import pytest

from kfcore.data import DataError, imagefolder, load_dataset
from kfcore.data.sandbox import load_capped
from kfcore.data.uploads import UPLOAD_REF
from kfcore.runs.limits import Limits
from kfcore.spec import DataSpec, RunSpec, SpecError, parse_spec
from tests.imagezips import class_zip, deflate_bomb, image_bytes, pets, png_header_only

LIMITS = Limits(memory_budget_mb=2048)
PEAK_MB = 48


def images_spec(path, size=32, color=False) -> DataSpec:
    return DataSpec(source="images", name=None, path=str(path), image_size=size, color=color)


def within_peak(fn, *args, **kwargs):
    """fn(*args)'s result (or its DataError), asserting it allocated under PEAK_MB on the way."""
    tracemalloc.start()
    try:
        try:
            result = fn(*args, **kwargs)
        except DataError as e:
            result = e
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert peak < PEAK_MB, f"took {peak:.0f} MB"
    return result


def test_class_folders_become_labelled_images_of_the_chosen_size_grey_or_colour(tmp_path):
    path = class_zip(tmp_path / "pets.zip", pets(6))
    grey = load_dataset(images_spec(path, 28), limits=LIMITS)
    assert grey.x.shape == (12, 28, 28, 1) and grey.x.dtype == np.float32
    assert grey.class_names == ["cats", "dogs"] and grey.task == "binary"
    assert grey.y.tolist() == [0] * 6 + [1] * 6 and 0.0 <= grey.x.min() and grey.x.max() <= 1.0
    # The dark cats stay dark and the light dogs light (the lower three quarters of each image is one value).
    assert grey.x[:6, 20:].mean() < 0.2 and grey.x[6:, 20:].mean() > 0.8
    colour = load_dataset(images_spec(path, 64, color=True), limits=LIMITS)
    assert colour.x.shape == (12, 64, 64, 3) and colour.input_shape == (64, 64, 3)
    assert "12 colour images resized to 64×64, 2 classes" in colour.description


def test_a_folder_around_the_class_folders_is_looked_through_and_strays_are_counted(tmp_path):
    members = {f"animals/{k}": v for k, v in pets(3).items()}
    members |= {
        "animals/readme.txt": b"hello",
        "animals/cats/notes.pdf": b"%PDF-1.4",
        "animals/top.png": image_bytes((8, 8), 9),
        "animals/.DS_Store": b"\0",
        "__MACOSX/animals/cats/._0.png": b"\0",
        "animals/more.zip": b"PK",
    }
    ds = load_dataset(images_spec(class_zip(tmp_path / "wrapped.zip", members)), limits=LIMITS)
    assert ds.class_names == ["cats", "dogs"] and len(ds.y) == 6
    assert "skipped 2 files that are not images (PNG, JPEG, GIF, BMP, WEBP)" in ds.notes
    assert f"skipped 2 {imagefolder.SYSTEM}" in ds.notes and f"skipped 1 {imagefolder.NESTED}" in ds.notes
    assert f"skipped 1 {imagefolder.ROOT}" in ds.notes


def test_traversal_and_absolute_names_are_never_read(tmp_path):
    members = pets(2) | {
        "../evil/1.png": image_bytes((8, 8), 1),
        "/etc/cats/2.png": image_bytes((8, 8), 1),
        "C:/cats/3.png": image_bytes((8, 8), 1),
        "cats/../../4.png": image_bytes((8, 8), 1),
    }
    found = imagefolder.read_zip(class_zip(tmp_path / "slip.zip", members), 28, False)
    assert found.classes == ["cats", "dogs"] and len(found.labels) == 4
    assert found.skipped[imagefolder.UNSAFE] == 4


def test_a_damaged_image_is_skipped_and_counted(tmp_path):
    good = image_bytes((20, 20), 50)
    members = pets(2) | {"cats/broken.png": good[: len(good) // 2], "dogs/fake.jpg": b"not a jpeg at all"}
    ds = load_dataset(images_spec(class_zip(tmp_path / "damaged.zip", members)), limits=LIMITS)
    assert len(ds.y) == 4 and f"skipped 2 {imagefolder.DAMAGED}" in ds.notes


def test_transparent_and_palette_images_are_read_on_white(tmp_path):
    members = pets(2) | {
        "cats/clear.png": image_bytes((10, 10), 0, mode="RGBA"),
        "dogs/palette.gif": image_bytes((10, 10), 200, "GIF", mode="P"),
    }
    ds = load_dataset(images_spec(class_zip(tmp_path / "modes.zip", members), color=True), limits=LIMITS)
    assert len(ds.y) == 6 and ds.x.shape[-1] == 3


def test_one_class_or_no_images_says_how_to_lay_the_folders_out(tmp_path):
    with pytest.raises(DataError, match="only the class folder 'cats' has images.*cats/1.jpg, dogs/2.png"):
        load_dataset(images_spec(class_zip(tmp_path / "one.zip", {"cats/1.png": image_bytes((8, 8), 1)})))
    with pytest.raises(DataError, match=r"no images were found \(skipped 1 files that are not images"):
        load_dataset(images_spec(class_zip(tmp_path / "none.zip", {"a/b.txt": b"x"})))
    (tmp_path / "text.zip").write_text("not a zip")
    with pytest.raises(DataError, match="text.zip is not a ZIP archive"):
        load_dataset(images_spec(tmp_path / "text.zip"))


def test_a_deflate_bomb_is_refused_from_the_directory_before_it_is_inflated(tmp_path):
    path = deflate_bomb(tmp_path / "bomb.zip", "cats/big.png", 512 << 20, extra=pets(2))
    assert path.stat().st_size < 2 << 20
    e = within_peak(load_dataset, images_spec(path), limits=LIMITS)
    assert isinstance(e, DataError), e
    assert "bomb.zip is refused: 'cats/big.png' declares 536,870,912 bytes once decompressed" in str(e)
    assert "a decompression bomb" in str(e)


def test_an_image_declaring_billions_of_pixels_is_never_decoded(tmp_path):
    members = pets(2) | {"cats/huge.png": png_header_only(100_000, 100_000)}
    ds = within_peak(load_dataset, images_spec(class_zip(tmp_path / "pixels.zip", members)), limits=LIMITS)
    assert len(ds.y) == 4 and f"skipped 1 {imagefolder.TOO_MANY_PIXELS}" in ds.notes


def test_thousands_of_entries_are_refused_from_the_end_record_before_the_directory_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(imagefolder, "MAX_MEMBERS", 50)
    path = class_zip(tmp_path / "flood.zip", {f"cats/{i}.png": b"" for i in range(51)})
    assert imagefolder.zip_entries(path) == 51
    monkeypatch.setattr(zipfile.ZipFile, "__init__", lambda *a, **k: pytest.fail("the directory was parsed"))
    with pytest.raises(DataError, match="flood.zip lists 51 files, more than the 50 one upload may hold"):
        load_dataset(images_spec(path))


def test_the_memory_rule_is_checked_before_any_image_is_decoded(tmp_path, monkeypatch):
    path = class_zip(tmp_path / "pets.zip", pets(6))
    monkeypatch.setattr(imagefolder, "_decode", lambda *a: pytest.fail("an image was decoded"))
    with pytest.raises(DataError, match="pets.zip: the dataset has 12 rows, over this server's limit of 10"):
        load_dataset(images_spec(path, 96, True), limits=Limits(max_rows=10))
    small = Limits(memory_budget_mb=1)  # a quarter of it, 256 KB, for one dataset: 12 × 96×96×3 × 5 bytes is over
    with pytest.raises(DataError, match="pets.zip needs about 1.6 MB of memory to load"):
        load_dataset(images_spec(path, 96, True), limits=small)


def test_the_sandboxed_child_reads_the_zip_as_the_process_does(tmp_path):
    spec = images_spec(class_zip(tmp_path / "pets.zip", pets(4)), 28, True)
    here, there = load_dataset(spec, limits=LIMITS), load_capped(spec, LIMITS)
    assert np.array_equal(here.x, there.x) and np.array_equal(here.y, there.y)
    assert there.class_names == ["cats", "dogs"] and there.description == here.description


def test_an_images_spec_round_trips_and_refuses_sizes_it_does_not_offer():
    spec = RunSpec(
        data=DataSpec(source="images", name="pets", path="0123456789abcdef/pets.zip", image_size=64, color=True)
    )
    assert RunSpec.from_url(spec.to_url()).data == spec.data
    assert parse_spec({"data": {"source": "images", "path": "p.zip"}}).data.image_size == 32
    with pytest.raises(SpecError, match="data.image_size: unknown value 33; choose one of 28, 32, 64, 96"):
        parse_spec({"data": {"source": "images", "path": "p.zip", "image_size": 33}})
    assert UPLOAD_REF.fullmatch("0123456789abcdef/pets.zip")


def test_the_exported_script_reads_the_prepared_images_and_splits_the_runs_samples_exactly(tmp_path, monkeypatch):
    import io
    import os
    import subprocess
    import sys

    from kfcore.data import split_dataset
    from kfcore.export import script as export

    spec = parse_spec(
        {
            "data": {"source": "images", "path": str(class_zip(tmp_path / "pets.zip", pets(8))), "image_size": 28},
            "layers": [{"type": "Conv2D", "filters": 4, "kernel_size": 3}, {"type": "Flatten"}],
            "train": {"epochs": 1, "batch_size": 8},
        }
    )
    script = export.python_script(spec, "pets")
    assert "pets-28px-grey.npz" in script and "PIL" not in script and "zipfile" not in script
    with zipfile.ZipFile(io.BytesIO(export.script_zip(spec, "pets"))) as bundle:
        assert sorted(bundle.namelist()) == ["pets-28px-grey.npz", "train.py"]
        bundle.extractall(tmp_path / "bundle")
    monkeypatch.chdir(tmp_path / "bundle")
    namespace: dict = {}
    exec(compile(script.split("\n# Model\n")[0], "pets", "exec"), namespace)  # noqa: S102
    splits = split_dataset(load_dataset(spec.data), spec.split)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(namespace[f"x_{part}"], getattr(splits, f"x_{part}"))
        y = namespace[f"y_{part}"].reshape(-1)  # a binary task's targets are an (N, 1) column
        np.testing.assert_array_equal(y, getattr(splits, f"y_{part}"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run(
        [sys.executable, "train.py"], cwd=tmp_path / "bundle", env=env, capture_output=True, text=True, timeout=300
    )  # its own process, where kfcore cannot be imported
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "test accuracy: " in run.stdout


def test_the_page_is_told_the_classes_are_folder_names_and_nothing_was_skipped_when_nothing_was(tmp_path):
    ds = load_dataset(images_spec(class_zip(tmp_path / "pets.zip", pets(3))), limits=LIMITS)
    assert ds.notes == []
    assert ds.task_reason == "binary: 2 classes in the class folders (cats, dogs), text labels"


def test_try_it_makes_a_picture_for_a_class_folder_run_exactly_as_training_made_the_zips_images(tmp_path):
    from kfcore.present.samples import SampleError, image_input

    photo = image_bytes((90, 40), 200, "JPEG")  # tall and light: cropped to its middle, never inverted
    found = imagefolder.read_zip(
        class_zip(tmp_path / "one.zip", {"a/x.jpg": photo, "b/y.png": image_bytes((9, 9), 0)}), 32, True
    )
    x = image_input(photo, (32, 32, 3), dark_background=True, class_folders=True)
    assert x.shape == (1, 32, 32, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], found.images[0] / np.float32(255))
    with pytest.raises(SampleError, match="the file cannot be used: it is damaged or not an image"):
        image_input(b"not a picture", (32, 32, 3), dark_background=False, class_folders=True)
