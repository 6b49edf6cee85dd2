"""Bad uploads: each is refused (or repaired, with a note) by a message that says what is wrong AND what to do.

One test per case of the issue's list, through kfcore.data.load_dataset on files written here; the upload
size limit lives in ui.datasets.save_upload (the web side of an upload), so it is tested there.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from kfcore.data import MAX_CLASSES, DataError, load_dataset, split_dataset
from kfcore.spec import DataSpec, SplitSpec


def csv_file(tmp_path: Path, content: bytes | str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def load_csv(path: Path, target: str = "y", task: str = "auto"):
    return load_dataset(DataSpec(source="csv", name=None, path=str(path), target=target, task=task))


def refusal(spec_or_path, *, target: str = "y", task: str = "auto") -> str:
    """The DataError message of loading a CSV path or a DataSpec."""
    with pytest.raises(DataError) as err:
        if isinstance(spec_or_path, DataSpec):
            load_dataset(spec_or_path)
        else:
            load_csv(spec_or_path, target, task)
    return str(err.value)


def says(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


def rows(values, feature=lambda i: i) -> str:
    return "\n".join(f"{feature(i)},{v}" for i, v in enumerate(values)) + "\n"


# -- files that are not a usable CSV --------------------------------------------------------------


def test_empty_file(tmp_path):
    says(refusal(csv_file(tmp_path, b"")), "table.csv is empty", "upload a CSV file with a header row and data rows")
    says(
        refusal(csv_file(tmp_path, "a,y\n", "header.csv")),
        "header.csv has a header row but no data rows",
        "add one row per sample under the header",
    )


def test_not_a_csv(tmp_path):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(64)
    says(
        refusal(csv_file(tmp_path, png, "photo.csv")),
        "photo.csv is a PNG image, not CSV text",
        "export the table as 'CSV UTF-8' and upload that",
    )
    says(
        refusal(csv_file(tmp_path, bytes(range(256)) * 4, "blob.csv")),
        "blob.csv holds binary data, not CSV text",
        "export the table as 'CSV UTF-8'",
    )
    says(
        refusal(csv_file(tmp_path, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "old.csv")),
        "old.csv is an old Excel workbook (.xls), not CSV text",
        "export the table as 'CSV UTF-8'",
    )


def test_non_utf8_text_names_the_line_and_the_fix(tmp_path):
    latin1 = "city,temp,y\nParis,21,0\nMünchen,18,1\nZürich,17,0\n".encode("latin-1")
    for path in (csv_file(tmp_path, latin1), csv_file(tmp_path, gzip.compress(latin1), "table.csv.gz")):
        says(
            refusal(path),
            f"{path.name} is not UTF-8 text (line 3 has the byte 0xFC, which is not valid UTF-8)",
            "probably Latin-1 or Windows-1252",
            "Save it as 'CSV UTF-8' and upload that",
        )


# -- too little, or the wrong kind of, target -----------------------------------------------------


def test_one_row_is_too_few_to_split_and_says_how_many_are_needed(tmp_path):
    message = refusal(csv_file(tmp_path, "a,y\n1,0\n"))
    says(
        message,
        "table.csv has 1 usable rows",
        "at least 2 to train on and 1 to test on",
        "3 rows at the very least and 4 with a validation split",
        "Add more rows",
    )
    says(refusal(csv_file(tmp_path, "a,y\n1,0\n2,1\n", "two.csv")), "two has 2 usable rows", "Add more rows")
    # Three rows load; the split then asks for smaller fractions or more data (with the default 20% / 10%).
    three = load_csv(csv_file(tmp_path, "a,y\n1,0\n2,1\n3,0\n", "three.csv"))
    split_dataset(three, SplitSpec(test=0.2, validation=0.0))
    with pytest.raises(DataError, match="fewer than 2 are left to train on; lower the test and validation fractions"):
        split_dataset(three, SplitSpec(test=0.2, validation=0.1))


def test_one_row_npz_and_an_npz_with_its_own_test_set(tmp_path):
    one = tmp_path / "one.npz"
    np.savez(one, x=np.zeros((1, 3)), y=np.array([1]))
    says(refusal(DataSpec(source="npz", name=None, path=str(one))), "one has 1 usable rows", "Add more rows")
    own = tmp_path / "own.npz"  # two to train on is enough when the file brings its own test set
    np.savez(own, x=np.array([[0.0], [1.0]]), y=np.array([0, 1]), x_test=np.array([[0.5]]), y_test=np.array([1]))
    assert len(load_dataset(DataSpec(source="npz", name=None, path=str(own))).y) == 2


def test_a_single_class(tmp_path):
    says(
        refusal(csv_file(tmp_path, "a,y\n" + rows(["yes"] * 20))),
        "only one class ('yes') occurs in the target column 'y'",
        "a classifier needs at least two different labels",
        "Choose another column to predict, or add rows of the other classes",
    )


def test_a_target_with_missing_values_drops_those_rows_with_a_note(tmp_path):
    ds = load_csv(csv_file(tmp_path, "a,y\n" + rows(["no", "", "yes", "no", "", "yes", "yes"])))
    assert len(ds.y) == 5 and ds.class_names == ["no", "yes"]
    assert "dropped 2 rows whose target 'y' is missing" in ds.notes


def test_a_target_with_only_missing_values_is_refused(tmp_path):
    says(
        refusal(csv_file(tmp_path, "a,y\n" + rows([""] * 10))),
        "every value in the target column 'y' is empty, so there is nothing to learn",
        "choose the column that holds the values to predict",
    )
    says(
        refusal(csv_file(tmp_path, "a,y\n" + rows(["", "", "", "1"]), "mostly.csv")),
        "mostly.csv has 1 usable rows",
        "Add more rows (3 rows had no usable 'y')",
    )


def test_thousands_of_classes_are_refused_as_probably_an_id_or_a_number(tmp_path):
    ids = csv_file(tmp_path, "a,y\n" + rows([f"user{i:04d}" for i in range(3000)]), "ids.csv")
    says(
        refusal(ids),
        "there are 3,000 different values in the target column 'y' (like 'user0000', 'user0001'",
        f"too many classes for a classifier (at most {MAX_CLASSES:,})",
        "it looks like an ID, a name or a number",
        "choose another column to predict",
    )
    numbers = csv_file(tmp_path, "a,y\n" + rows(range(3000), lambda i: i % 7), "numbers.csv")
    says(refusal(numbers, task="multiclass"), "3,000 different values", "choose task 'regression'")
    assert load_csv(numbers).task == "regression"  # 'auto' already reads many whole numbers as a quantity
    at_cap = load_csv(csv_file(tmp_path, "a,y\n" + rows([f"c{i}" for i in range(MAX_CLASSES)]), "cap.csv"))
    assert at_cap.n_classes == MAX_CLASSES


def test_text_in_a_numeric_column_becomes_missing_values_not_categories(tmp_path):
    ages = [str(20 + i % 30) for i in range(40)]
    ages[3], ages[10], ages[25] = "?", "12a", "n/a"  # pandas itself reads 'n/a' as missing
    ds = load_csv(csv_file(tmp_path, "age,y\n" + "\n".join(f"{a},{i % 2}" for i, a in enumerate(ages)) + "\n"))
    assert ds.feature_names == ["age"] and ds.x.shape == (40, 1)  # one number column, not 33 one-hot columns
    assert (
        "'age' holds numbers, but 2 cells are not numbers (e.g. '?', '12a'); treated them as missing rather "
        "than turning the column into categories"
    ) in ds.notes
    median = float(np.median([float(a) for a in ages if a.isdigit()]))
    assert ds.x[3, 0] == ds.x[10, 0] == ds.x[25, 0] == pytest.approx(median)
    assert f"filled 3 missing values in 'age' with the median {median}" in ds.notes


def test_text_in_a_numeric_target_drops_those_rows_and_keeps_it_a_number(tmp_path):
    prices = [f"{100 + 1.5 * i}" for i in range(40)]
    prices[5], prices[7] = "?", "unknown"
    ds = load_csv(csv_file(tmp_path, "a,y\n" + rows(prices)))
    assert ds.task == "regression" and len(ds.y) == 38
    assert "dropped 2 rows whose target 'y' is not a number (e.g. '?', 'unknown')" in ds.notes
    # Asked for classes, the same column keeps its text labels: only 'auto' and 'regression' read it as numbers.
    labels = load_csv(csv_file(tmp_path, "a,y\n" + rows(prices), "labels.csv"), task="multiclass")
    assert labels.n_classes == 40 and {"?", "unknown"} <= set(labels.class_names)


def test_a_mostly_text_column_stays_categories(tmp_path):
    sizes = ["S", "M", "L", "1", "2"] * 8  # 40% numbers: a code column, not a number column with typos
    ds = load_csv(csv_file(tmp_path, "size,y\n" + "\n".join(f"{s},{i % 2}" for i, s in enumerate(sizes)) + "\n"))
    assert ds.feature_names == ["size=1", "size=2", "size=L", "size=M", "size=S"]


# -- numbers as spreadsheets write them, and columns that only name the rows ----------------------------------


def test_decimal_comma_numbers_in_a_semicolon_file_are_read_as_numbers_with_a_note(tmp_path):
    # "7,7" is 7.7; "1.007,5" is 1007.5 (a dot groups thousands); the target "0,1" is 0.1
    lines = ["price;weight;y"] + [f"{i},{i % 10};1.{i:03d},5;0,{i % 3}" for i in range(30)]
    ds = load_csv(csv_file(tmp_path, "\n".join(lines) + "\n"), task="regression")
    assert ds.feature_names == ["price", "weight"] and ds.task == "regression"
    assert ds.x[7].tolist() == pytest.approx([7.7, 1007.5])  # "7,7" and "1.007,5"
    assert ds.y[4] == pytest.approx(0.1)  # the target "0,1"
    assert "read 'price' as numbers written with a decimal comma ('0,123' is 0.123; dots group thousands)" in ds.notes
    assert any("read the target 'y'" in n and "decimal comma" in n for n in ds.notes)


def test_thousands_separators_are_read_as_numbers_not_thousands_of_classes(tmp_path):
    lines = ["amount,y"] + [f'"{1000 + 1234 * i:,}","{2000 + 55 * i:,}.5"' for i in range(60)]
    ds = load_csv(csv_file(tmp_path, "\n".join(lines) + "\n"))
    assert ds.task == "regression" and ds.x[2, 0] == pytest.approx(3468) and ds.y[2] == pytest.approx(2110.5)
    assert any("read 'amount' as numbers written with commas as thousands separators" in n for n in ds.notes)


def test_a_text_column_with_one_value_per_row_is_dropped_as_an_id_with_a_note(tmp_path):
    names = [
        "Mazda RX4",
        "Datsun 710",
        "Hornet 4 Drive",
        "Valiant",
        "Duster 360",
        "Merc 240D",
        "Merc 230",
        "Fiat 128",
        "Honda Civic",
        "Toyota Corolla",
        "Camaro Z28",
        "Pontiac Firebird",
    ]
    lines = ["model,cyl,kind,y"] + [f"{n},{4 + i % 3 * 2},{'ab'[i % 2]},{i % 2}" for i, n in enumerate(names)]
    ds = load_csv(csv_file(tmp_path, "\n".join(lines) + "\n"))
    assert ds.feature_names == ["cyl", "kind=a", "kind=b"]
    assert (
        "dropped column 'model': 9 different text values in 9 rows, one per row (an ID or a name?), which says "
        "nothing about new rows" in ds.notes
    )


def test_a_few_categories_in_a_small_table_stay_categories(tmp_path):
    lines = ["colour,y"] + [f"{c},{i % 2}" for i, c in enumerate(["red", "green", "blue", "red", "green"] * 2)]
    ds = load_csv(csv_file(tmp_path, "\n".join(lines) + "\n"))
    seen = sorted(set(ds.frame["colour"].iloc[split_dataset(ds, SplitSpec()).train_index]))  # the training rows'
    assert ds.feature_names == [f"colour={c}" for c in seen] and len(seen) >= 2


# -- the upload size limit (ui.datasets.save_upload, where an upload arrives) -----------------------


def test_a_file_over_the_upload_limit_is_refused_with_its_size_and_the_limit(tmp_path, monkeypatch):
    from ui.datasets import save_upload, upload_limit_mb

    big = b"a,y\n" + b"1,0\n" * 400_000  # 1.5 MB
    monkeypatch.setenv("KF_MAX_UPLOAD_MB", "1")
    assert upload_limit_mb() == 1  # the uploader asks the browser to refuse it before sending, too
    with pytest.raises(DataError) as err:
        save_upload("big.csv", big, root=tmp_path)
    says(
        str(err.value),
        "big.csv is 1.5 MB, over this server's upload limit of 1 MB",
        "upload a smaller file: a sample of the rows, or compressed (.csv.gz",
    )
    assert not (tmp_path / "uploads").exists()  # nothing was written
    assert save_upload("small.csv", b"a,y\n1,0\n", root=tmp_path).exists()

    monkeypatch.setenv("KF_HOSTED", "1")
    monkeypatch.setenv("KF_MAX_UPLOAD_MB", "lots")  # a typo keeps the hosted default, never lifts the cap
    assert upload_limit_mb() == 50
    monkeypatch.setenv("KF_MAX_UPLOAD_MB", "10")
    monkeypatch.setenv("KF_MAX_EPOCHS", "lots")  # another variable's typo changes nothing here
    assert upload_limit_mb() == 10
    monkeypatch.delenv("KF_MAX_EPOCHS")
    monkeypatch.delenv("KF_MAX_UPLOAD_MB")
    assert upload_limit_mb() == 50  # hosted default
    monkeypatch.delenv("KF_HOSTED")
    assert upload_limit_mb() is None  # locally only Streamlit's server.maxUploadSize (200 MB) applies
    assert save_upload("big.csv", big, root=tmp_path).stat().st_size == len(big)


# -- NPZ and IDX ----------------------------------------------------------------------------------


def test_npz_without_x_or_y(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, features=np.zeros((4, 2)), labels=np.zeros(4))
    says(
        refusal(DataSpec(source="npz", name=None, path=str(path))),
        "arrays.npz has no array named 'x' or 'y'; it holds 'features', 'labels'",
        "save your arrays with numpy.savez(path, x=features_or_images, y=labels)",
    )


class CreatesFile:
    """Unpickling this object opens (creates) a file: proof that a load unpickled something."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_npz_with_object_arrays_is_refused_and_never_unpickled(tmp_path):
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(CreatesFile(probe))).close()
    assert probe.exists()  # the payload is live: unpickling it does create its file

    for key in ("x", "y"):
        marker = tmp_path / f"unpickled-{key}"
        evil = np.array([CreatesFile(marker)] * 4, dtype=object)
        arrays = {"x": np.zeros((4, 2)), "y": np.array([0, 1, 0, 1]), key: evil}
        path = tmp_path / f"objects-{key}.npz"
        np.savez(path, **arrays)  # numpy pickles object arrays into the archive
        says(
            refusal(DataSpec(source="npz", name=None, path=str(path))),
            f"array '{key}' in objects-{key}.npz holds Python objects; object arrays are refused for safety",
            "Store numbers only",
        )
        assert not marker.exists()

    marker = tmp_path / "unpickled-raw"
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps(CreatesFile(marker)))  # a bare pickle named .npz
    says(
        refusal(DataSpec(source="npz", name=None, path=str(raw))),
        "raw.npz is not an .npz archive of plain arrays",
        "save your arrays with numpy.savez",
    )
    assert not marker.exists()


def write_idx(path: Path, arr: np.ndarray) -> Path:
    raw = bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, ">u4").tobytes() + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw))
    return path


def test_idx_files_whose_counts_disagree(tmp_path):
    images = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((5, 4, 4)))
    labels = write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(6) % 2)
    says(
        refusal(DataSpec(source="idx", name=None, images=str(images), labels=str(labels))),
        "the images file holds 5 images but the labels file holds 6 labels",
        "pick files that belong together (both train- or both t10k-)",
    )
    short = tmp_path / "short-images.gz"  # a header that promises more images than the file holds
    short.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + np.array([9, 4, 4], ">u4").tobytes() + bytes(20)))
    says(
        refusal(DataSpec(source="idx", name=None, images=str(short), labels=str(labels))),
        "the images file short-images.gz is cut short: its header promises 144 bytes of data, it holds 20",
        "the file is incomplete (an interrupted download or copy?): get it again",
    )
