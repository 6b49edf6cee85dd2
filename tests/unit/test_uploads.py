"""Uploads: named by a reference inside the store, never a server path, and private to their uploader when hosted
(readable by another browser only through a run that its owner shared, and then only that run's own file)."""

import dataclasses

import pytest

from kfcore.data import DataError, load_dataset, uploads
from kfcore.export.script import python_script
from kfcore.runs.jobs import execute_run
from kfcore.runs.limits import LimitError, Limits, check_data_access, grant_data_access
from kfcore.runs.store import RunStore
from kfcore.spec import DataSpec, parse_spec

MINE, OTHER = "0123456789abcdef/flowers.csv", "fedcba9876543210/secret.csv"
HOSTED = Limits(hosted=True)


def _table(rows: int = 40) -> str:
    return "a,b,kind\n" + "\n".join(f"{i % 5},{i % 3},{'x' if i % 2 else 'y'}" for i in range(rows)) + "\n"


@pytest.fixture
def store(tmp_path) -> RunStore:
    """A store holding two uploads of alice's; nobody else has uploaded anything."""
    store = RunStore(tmp_path / "kf")
    for ref in (MINE, OTHER):
        (store.uploads_dir / ref).parent.mkdir(parents=True)
        (store.uploads_dir / ref).write_text(_table())
        store.add_upload("alice", ref, ref.split("/")[1])
    return store


def csv(path: str) -> DataSpec:
    return DataSpec(source="csv", name="t", path=path, target="kind")


def _run(store: RunStore, owner: str | None, path: str, epochs: int = 1) -> str:
    spec = {
        "data": {"source": "csv", "path": path, "target": "kind"},
        "layers": [{"type": "Dense", "units": 4, "activation": "relu"}],
        "train": {"epochs": epochs},
    }
    return store.create_run(parse_spec(spec).to_dict(), owner=owner)


def test_a_reference_names_a_file_inside_the_uploads_folder_only(store):
    root = store.uploads_dir
    assert uploads.ref_of(MINE, root) == MINE
    assert uploads.ref_of(str(root / MINE), root) == MINE  # an old spec's absolute path
    for other in (
        "flowers.csv",
        "/etc/passwd",
        "0123456789abcdef/../../runs.sqlite",
        str(root / ".." / "runs.sqlite"),
        "0123456789abcdef/flowers.exe",
        "0123456789ABCDEF/flowers.csv",
    ):
        assert uploads.ref_of(other, root) is None, other
    resolved = uploads.resolve(csv(MINE), root)
    assert resolved.path == str(root / MINE) and load_dataset(resolved).n_classes == 2
    assert uploads.resolve(csv("/data/local.csv"), root).path == "/data/local.csv"  # locally: any path, as is
    assert uploads.as_refs(csv(str(root / MINE)), root).path == MINE


def test_hosted_an_upload_is_readable_by_its_uploader_and_through_a_run_its_owner_shared_only(store):
    check_data_access(csv(MINE), HOSTED, store, "alice")
    for owner in ("bob", None):
        with pytest.raises(LimitError, match=r"'flowers.csv' was uploaded from another browser.*upload your own copy"):
            check_data_access(csv(MINE), HOSTED, store, owner)
    shared = store.get(_run(store, "alice", MINE))
    check_data_access(csv(MINE), HOSTED, store, "bob", via=shared)  # the run's own data, opened by its link
    check_data_access(csv(str(store.uploads_dir / MINE)), HOSTED, store, "bob", via=shared)
    with pytest.raises(LimitError, match="'secret.csv' was uploaded from another browser"):
        check_data_access(csv(OTHER), HOSTED, store, "bob", via=shared)  # the link's spec edited to another upload
    for forged in (_run(store, "bob", OTHER), _run(store, None, OTHER)):  # a run naming a file its owner may not read
        with pytest.raises(LimitError, match="another browser"):
            check_data_access(csv(OTHER), HOSTED, store, "carol", via=store.get(forged))
    assert not store.may_read_upload("bob", MINE)
    grant_data_access(store, "bob", shared)  # bob forked alice's run: his runs of it may read its file
    check_data_access(csv(MINE), HOSTED, store, "bob")
    with pytest.raises(LimitError, match="another browser"):
        check_data_access(csv(OTHER), HOSTED, store, "bob")
    check_data_access(csv(OTHER), Limits(), store, "bob")  # locally: one user, every file


def test_the_worker_refuses_a_queued_run_naming_another_owners_upload_and_trains_its_owners(store, monkeypatch):
    monkeypatch.setenv("KF_HOSTED", "1")
    theirs = _run(store, "bob", OTHER)
    store.start_in_process(theirs)
    result = execute_run(store, theirs)
    assert result.status == "failed" and "'secret.csv' was uploaded from another browser" in store.get(theirs).error
    assert str(store.root) not in store.get(theirs).error
    mine = _run(store, "alice", MINE)  # a reference, resolved against the store by the worker
    store.start_in_process(mine)
    assert execute_run(store, mine).status == "finished", store.get(mine).error


def test_messages_and_exported_scripts_name_data_files_without_their_folder(store):
    with pytest.raises(DataError) as e:
        load_dataset(uploads.resolve(csv("0123456789abcdef/gone.csv"), store.uploads_dir))
    assert "the file gone.csv does not exist" in str(e.value) and str(store.root) not in str(e.value)
    spec = parse_spec({"data": {"source": "csv", "path": MINE, "target": "kind"}})
    script = python_script(dataclasses.replace(spec, data=uploads.resolve(spec.data, store.uploads_dir)))
    assert "# Put flowers.csv next to this script" in script and 'pd.read_csv("flowers.csv")' in script
    assert str(store.root) not in script and "0123456789abcdef" not in script


def test_the_command_line_reads_an_upload_reference_from_its_store(store, tmp_path):
    from tests.unit.test_cli import run_cli, write_spec

    spec = {"data": {"source": "csv", "path": MINE, "target": "nope"}}  # fails on the file's columns, before training
    out = run_cli("train", write_spec(tmp_path, spec), "--store", store.root)
    assert (
        out.returncode == 2
        and out.stderr.startswith("error: flowers.csv: ")
        and "there is no column 'nope'" in out.stderr
    )
    assert str(store.root) not in out.stderr
