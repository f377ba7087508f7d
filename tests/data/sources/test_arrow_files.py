"""HF datasets files (Parquet, save_to_disk folders) as row sources: the rows written are the
rows read, and every bad-input kind is one error line naming the file (and row)."""
import json

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from flan_jax import cli
from flan_jax.data.sources import arrow_files, local_files
from hf_fixtures import write_parquet, write_save_to_disk

ROWS = [{"instruction": f"Add {i} and 1.", "input": "", "output": str(i + 1),
         "tags": ["math", str(i)], "meta": {"n": i, "ok": i % 2 == 0}} for i in range(10)]


def test_save_to_disk_folder_rows_in_order_over_shards(tmp_path):
    shards = write_save_to_disk(tmp_path / "ds", ROWS, shards=3)
    got = arrow_files.read_table(tmp_path / "ds")
    assert [r.row for r in got] == ROWS
    assert [r.index for r in got] == list(range(10))
    # shards of ceil(10 / 3) = 4 rows: 4, 4, 2
    assert [r.file for r in got] == [str(shards[0])] * 4 + [str(shards[1])] * 4 + [str(shards[2])] * 2
    assert arrow_files.column_names(tmp_path / "ds") == list(ROWS[0])


def test_parquet_rows_over_row_groups_and_ipc_file_form(tmp_path):
    path = write_parquet(tmp_path / "d.parquet", ROWS, row_group_rows=3)
    assert [r.row for r in arrow_files.read_table(path)] == ROWS
    assert arrow_files.is_table_path(path) and arrow_files.is_table_path(tmp_path) is False
    folder = tmp_path / "ipcfile"
    folder.mkdir()
    table = pa.Table.from_pylist(ROWS)
    with ipc.new_file(folder / "data-00000-of-00001.arrow", table.schema) as w:  # random-access form
        w.write_table(table)
    assert [r.row for r in arrow_files.read_table(folder)] == ROWS


def _error(path) -> str:
    with pytest.raises(arrow_files.ArrowFileError) as e:
        arrow_files.read_table(path)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_truncated_stream_at_a_batch_boundary_is_an_error(tmp_path):
    # pyarrow itself reads a stream cut after a whole batch without complaint: 8 rows, silently
    (shard,) = write_save_to_disk(tmp_path / "ds", ROWS, batch_rows=4)
    data = shard.read_bytes()
    assert data.endswith(arrow_files.END_OF_STREAM)
    shard.write_bytes(data[: -len(arrow_files.END_OF_STREAM)])
    assert len(ipc.open_stream(shard.read_bytes()).read_all()) == 10
    assert _error(tmp_path / "ds") == (
        f"{shard}: row 10: the Arrow stream stops after 10 rows without its end-of-stream marker "
        "(the file is truncated; copy it again)")
    shard.write_bytes(data[: len(data) // 2])  # cut inside a message
    assert _error(tmp_path / "ds").startswith(f"{shard}: row 4: corrupt Arrow data after 4 rows")


def test_corrupt_stream_bytes(tmp_path):
    (shard,) = write_save_to_disk(tmp_path / "ds", ROWS)
    data = bytearray(shard.read_bytes())
    data[4:12] = b"\x7f" * 8  # the first message's length and flatbuffer header
    shard.write_bytes(bytes(data))
    assert _error(tmp_path / "ds").startswith(f"{shard}: row 0: corrupt Arrow data")


def test_state_json_naming_a_missing_shard(tmp_path):
    shards = write_save_to_disk(tmp_path / "ds", ROWS, shards=2)
    shards[1].unlink()
    assert _error(tmp_path / "ds") == (f"{tmp_path / 'ds' / 'state.json'}: names 1 missing data "
                                       f"file(s) in {tmp_path / 'ds'}: {shards[1].name}")
    (tmp_path / "ds" / "state.json").unlink()  # without state.json: the "-of-2" names count
    assert "has 1 of the shards its file names count" in _error(tmp_path / "ds")
    (tmp_path / "ds" / "state.json").write_text('{"_data_files": "x"}')
    assert "field '_data_files' must be a non-empty list" in _error(tmp_path / "ds")


def test_row_count_differing_from_dataset_info(tmp_path):
    write_save_to_disk(tmp_path / "ds", ROWS, split="validation", declared=11)
    msg = _error(tmp_path / "ds")
    assert msg.startswith(f"{tmp_path / 'ds' / 'dataset_info.json'}: declares 11 rows for split "
                          "'validation' (splits.validation.num_examples) but the data files hold 10")
    assert 'delete "splits" from dataset_info.json' in msg


def test_dataset_dict_folder_names_its_splits(tmp_path):
    write_save_to_disk(tmp_path / "dd" / "train", ROWS)
    write_save_to_disk(tmp_path / "dd" / "test", ROWS[:2], split="test")
    (tmp_path / "dd" / "dataset_dict.json").write_text('{"splits": ["train", "test"]}')
    assert "a DatasetDict folder (splits: test, train)" in _error(tmp_path / "dd")


@pytest.mark.parametrize("damage", ["footer", "page"])
def test_corrupt_parquet(tmp_path, damage):
    path = write_parquet(tmp_path / "d.parquet", ROWS, row_group_rows=10)
    data = bytearray(path.read_bytes())
    if damage == "footer":
        data[-4:] = b"XXXX"  # the closing "PAR1" magic
    else:
        data[40:120] = bytes(80)  # inside the first column chunk's pages
    path.write_bytes(bytes(data))
    msg = _error(path)
    if damage == "footer":
        assert msg.startswith(f"{path}: not a readable Parquet file (Parquet magic bytes not found")
    else:
        assert msg.startswith(f"{path}: row 0: Parquet row group 0 is unreadable")


# ----------------------------------------------------------------------------- as local files


def test_local_files_scan_names_file_row_and_field(tmp_path):
    rows = [dict(ROWS[0]), {**ROWS[1], "output": None}, {**ROWS[2], "instruction": " "}]
    path = write_parquet(tmp_path / "a.parquet", rows)
    scan = local_files.scan(path, "alpaca")
    assert [line for line, _ in scan.rows] == [0]
    assert [str(p) for p in scan.problems] == [
        f"{path}: row 1: field 'output' must be a non-empty string, found null",
        f"{path}: row 2: field 'instruction' must be a non-empty string, found an empty string"]
    (shard,) = write_save_to_disk(tmp_path / "ds", rows)
    with pytest.raises(local_files.LocalFileError, match=rf"^{shard}: row 1: field 'output'"):
        local_files.read_rows(tmp_path / "ds", "alpaca")
    assert local_files.read_rows(tmp_path / "ds", "jsonl", columns=("tags", "meta")) == rows
    with pytest.raises(local_files.LocalFileError, match="named columns"):
        local_files.read_rows(path, "tsv", columns=("instruction", "output"))


def test_check_command_on_parquet_and_save_to_disk(tmp_path, capsys):
    path = write_parquet(tmp_path / "bad.parquet", [ROWS[0], {**ROWS[1], "output": ""}])
    assert cli.main(["check", str(path)]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"{path}: row 1: field 'output' must be a non-empty string, "
                                "found an empty string"]
    assert out.strip() == f"{path}: alpaca file, 2 rows: 1 valid, 1 with problems"
    (shard,) = write_save_to_disk(tmp_path / "ds", ROWS)
    shard.write_bytes(shard.read_bytes()[:-8])
    assert cli.main(["check", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"{shard}: row 10: the Arrow stream stops after 10 rows without its "
                   "end-of-stream marker (the file is truncated; copy it again)")


# ----------------------------------------------------------------------------- in a mixture


@pytest.mark.slow
def test_a_mixture_reading_parquet_and_save_to_disk_trains(tmp_path, monkeypatch):
    """A mixture file's local collections, one a Parquet file and one a save_to_disk folder
    ({split} -> the split's folder), feed the trainer their rows. (One mixture holds both, so
    the test compiles one train step, not two.)"""
    import numpy as np
    import seqio

    from flan_jax.models.decoder import DecoderConfig
    from flan_jax.train.train import train

    data, mix = tmp_path / "data", tmp_path / "mix"
    write_parquet(data / "pq" / "train.parquet", ROWS)
    write_save_to_disk(data / "disk" / "train", ROWS[::-1], shards=2)
    mix.mkdir()
    (mix / "hf.toml").write_text(
        '[local.hf_pq]\nfile_pattern = "pq/{split}.parquet"\nformat = "alpaca"\n\n'
        '[local.hf_disk]\nfile_pattern = "disk/{split}"\nformat = "alpaca"\n\n'
        '[mixture.hf_mix]\nrate = "equal"\ninclude = [{ local = "hf_pq" }, { local = "hf_disk" }]\n')
    monkeypatch.setenv("FLAN_JAX_MIXTURES_DIR", str(mix))  # only this file's mixtures
    monkeypatch.setenv("FLAN_JAX_DATA_DIR", str(data))
    model = DecoderConfig(vocab_size=1024, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8,
                          mlp_dim=32, num_layers=1)
    result = train(model=model, mixture="hf_mix", feature_lengths={"inputs": 16, "targets": 4},
                   batch_size=8, num_steps=2, mesh_shape=(-1, 1, 1), model_dir=str(tmp_path / "run"))
    assert result.step == 2 and np.all(np.isfinite(result.losses))
    for name, rows in (("hf_pq", ROWS), ("hf_disk", ROWS[::-1])):
        task = seqio.get_mixture_or_task(f"local.{name}:zs_noopt")
        got = [ex["targets_pretokenized"].decode() for ex in task.get_dataset(
            None, split="train", shuffle=False, use_cached=False).as_numpy_iterator()]
        assert got == [r["output"] for r in rows]


@pytest.mark.slow
def test_check_command_renders_a_clean_save_to_disk_folder(tmp_path, capsys):
    write_save_to_disk(tmp_path / "ds" / "train", ROWS, shards=2)
    assert cli.main(["check", str(tmp_path / "ds" / "train"), "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{tmp_path / 'ds' / 'train'}: alpaca file, 10 rows: 10 valid, 0 with problems")
    assert "--- inputs\nAdd 0 and 1.\n--- targets\n1\n" in out


def test_files_written_by_hf_datasets_read_as_datasets_reads_them(tmp_path):
    """The independent reference: `datasets` itself writes the folder and the Parquet file
    (ClassLabel, Sequence and nested columns, two shards) and gives the rows (`to_list`)."""
    datasets = pytest.importorskip("datasets")
    from datasets.splits import SplitDict, SplitInfo

    features = datasets.Features({
        "text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"]),
        "tags": datasets.Sequence(datasets.Value("string")), "meta": {"n": datasets.Value("int64")}})
    info = datasets.DatasetInfo(features=features,
                                splits=SplitDict({"train": SplitInfo("train", num_examples=10)}))
    ds = datasets.Dataset.from_list(
        [{"text": f"s{i}", "label": i % 2, "tags": [str(i)] * i, "meta": {"n": i}} for i in range(10)],
        features=features, info=info, split="train")
    ds.save_to_disk(str(tmp_path / "ds"), num_shards=2)
    ds.to_parquet(str(tmp_path / "ds.parquet"))
    assert [r.row for r in arrow_files.read_table(tmp_path / "ds")] == ds.to_list()
    assert [r.row for r in arrow_files.read_table(tmp_path / "ds.parquet")] == ds.to_list()
    # datasets keeps the original split size in dataset_info.json after filter/select
    ds.select(range(4)).save_to_disk(str(tmp_path / "four"))
    assert "declares 10 rows for split 'train'" in _error(tmp_path / "four")
