"""Readers for the files HF `datasets` writes: Parquet files and `save_to_disk` folders.

Pure pyarrow (no `datasets`, nothing from the hub). Each reader returns every row as a Python
dict with the columns' own names and values (`Table.to_pylist()`), each tagged with the file it
came from and its row index (0-based, counted over the whole folder, as `ds[i]`):

    read_table("rte_val/")   # save_to_disk folder: state.json, dataset_info.json,
                             # data-00000-of-00001.arrow holding 277 rows
    -> [LocatedRow(file="rte_val/data-00000-of-00001.arrow", index=0,
                   row={"sentence1": "Dana Reeve, ...", "sentence2": "Christopher Reeve had an
                        accident.", "label": 1, "idx": 0}), ...]          # 277 items

A ClassLabel column stays an int (RTE: 0 = entailment), a Sequence a list, a struct a dict.

On-disk forms:

* `*.parquet`: one Parquet file (`Dataset.to_parquet`, the hub's parquet exports). Its footer
  declares the row count; a file whose footer or pages cannot be read is an error.
* a `save_to_disk` folder: `state.json` lists the shards (`_data_files`) and names the split
  (`_split`); `dataset_info.json` may declare the split's size (`splits.<split>.num_examples`);
  the shards `data-NNNNN-of-MMMMM.arrow` are Arrow IPC *streams*. A folder without state.json
  is read from its `data-*.arrow` shards, which must be all M of "-of-M". A `DatasetDict`
  folder (dataset_dict.json and one folder per split) is refused with the split folders named.

Bad input is one `ArrowFileError` line naming the file (and row where it applies), never a
traceback and never a silently shorter split:

* a stream that is cut short: pyarrow stops at a batch boundary without complaint, so every
  stream must end with the IPC end-of-stream marker (0xFFFFFFFF then a zero length, 8 bytes,
  which `datasets`' writer always writes on close);
* a stream or Parquet file that is corrupt (a bad message, footer or page);
* state.json naming a shard that is missing, or a folder with shards missing from "-of-M";
* a row count differing from the one the folder declares. `datasets` keeps the original
  split's count when a dataset is filtered or selected before `save_to_disk`; the message says
  how to drop the stale count if the rows are as intended.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from flan_jax.errors import FlanJaxError

STATE_FILE = "state.json"
INFO_FILE = "dataset_info.json"
DICT_FILE = "dataset_dict.json"
SHARD_NAME = re.compile(r"data-(\d+)-of-(\d+)\.arrow")
# The Arrow IPC end-of-stream marker: continuation token 0xFFFFFFFF, then a zero metadata length.
END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"
IPC_FILE_MAGIC = b"ARROW1"  # the random-access IPC *file* form, read too


class ArrowFileError(FlanJaxError):
    """A Parquet file or save_to_disk folder is unreadable, incomplete or inconsistent."""


class LocatedRow(NamedTuple):
    file: str  # the Parquet file or Arrow shard the row is in
    index: int  # 0-based row index over the whole folder or file (as `ds[index]`)
    row: dict[str, Any]


def is_table_path(path: str | os.PathLike) -> bool:
    """Whether `path` is a Parquet file (by its ".parquet" name) or a save_to_disk folder (a
    directory holding state.json, dataset_info.json, dataset_dict.json or data-*.arrow)."""
    p = Path(path)
    if p.suffix == ".parquet":
        return True
    if not p.is_dir():
        return False
    return any((p / n).is_file() for n in (STATE_FILE, INFO_FILE, DICT_FILE)) or any(
        p.glob("data-*.arrow"))


def error_text(error: BaseException) -> str:
    """The first line of a pyarrow/OS/zlib error's message, for a one-line error."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ArrowFileError(f"{path}: cannot read ({error_text(e)})") from None


# ----------------------------------------------------------------------------- Parquet


def read_parquet(path: str | os.PathLike) -> list[LocatedRow]:
    """Every row of one Parquet file, checked against the row count its footer declares."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    data = _read_bytes(path)
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as e:
        raise ArrowFileError(f"{path}: not a readable Parquet file ({error_text(e)})") from None
    declared = parquet.metadata.num_rows
    rows: list[LocatedRow] = []
    for group in range(parquet.num_row_groups):
        try:
            batch = parquet.read_row_group(group).to_pylist()
        except (pa.ArrowException, OSError, ValueError) as e:
            raise ArrowFileError(
                f"{path}: row {len(rows)}: Parquet row group {group} is unreadable ({error_text(e)})"
            ) from None
        start = len(rows)
        rows.extend(LocatedRow(str(path), start + i, r) for i, r in enumerate(batch))
    if len(rows) != declared:
        raise ArrowFileError(f"{path}: the footer declares {declared} rows, the row groups hold "
                             f"{len(rows)}")
    return rows


# ----------------------------------------------------------------------------- Arrow streams


def read_arrow_stream(path: str | os.PathLike, first_index: int = 0) -> list[LocatedRow]:
    """Every row of one Arrow IPC stream (a `data-*.arrow` shard); indices start at
    `first_index`. The stream must end with the end-of-stream marker (module doc)."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    path = Path(path)
    data = _read_bytes(path)
    rows: list[dict[str, Any]] = []
    try:
        if data.startswith(IPC_FILE_MAGIC):
            reader = ipc.open_file(pa.BufferReader(data))
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        else:
            batches = iter(ipc.open_stream(pa.BufferReader(data)))
        for batch in batches:
            rows.extend(batch.to_pylist())
    except (pa.ArrowException, OSError, ValueError) as e:
        raise ArrowFileError(f"{path}: row {first_index + len(rows)}: corrupt Arrow data after "
                             f"{len(rows)} rows of this file ({error_text(e)})") from None
    if not data.startswith(IPC_FILE_MAGIC) and not data.endswith(END_OF_STREAM):
        raise ArrowFileError(
            f"{path}: row {first_index + len(rows)}: the Arrow stream stops after {len(rows)} "
            "rows without its end-of-stream marker (the file is truncated; copy it again)")
    return [LocatedRow(str(path), first_index + i, r) for i, r in enumerate(rows)]


# ----------------------------------------------------------------------------- save_to_disk


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_bytes(path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArrowFileError(f"{path}: not valid JSON ({error_text(e)})") from None


def _shards(folder: Path) -> tuple[list[Path], str | None]:
    """The folder's shard files in order and its split name (state.json's, else None)."""
    state_path = folder / STATE_FILE
    if state_path.is_file():
        state = _read_json(state_path)
        entries = state.get("_data_files") if isinstance(state, dict) else None
        if (not isinstance(entries, list) or not entries or not all(
                isinstance(e, dict) and isinstance(e.get("filename"), str) for e in entries)):
            raise ArrowFileError(f"{state_path}: field '_data_files' must be a non-empty list of "
                                 '{"filename": ...} objects')
        files = [folder / e["filename"] for e in entries]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ArrowFileError(f"{state_path}: names {len(missing)} missing data file(s) in "
                                 f"{folder}: {', '.join(missing[:3])}")
        split = state.get("_split")
        return files, split if isinstance(split, str) else None
    files = sorted(folder.glob("data-*.arrow"))
    if not files:
        raise ArrowFileError(f"{folder}: no {STATE_FILE} and no data-*.arrow files (not a "
                             "datasets save_to_disk folder)")
    totals = {int(m.group(2)) for f in files if (m := SHARD_NAME.fullmatch(f.name))}
    if len(totals) == 1 and len(files) != totals.pop():
        raise ArrowFileError(f"{folder}: has {len(files)} of the shards its file names count "
                             f"({files[0].name}) and no {STATE_FILE}: some are missing")
    return files, None


def declared_count(folder: str | os.PathLike, split: str | None) -> int | None:
    """dataset_info.json's `splits[split].num_examples`, or None where not declared."""
    info_path = Path(folder) / INFO_FILE
    if split is None or not info_path.is_file():
        return None
    info = _read_json(info_path)
    splits = info.get("splits") if isinstance(info, dict) else None
    entry = splits.get(split) if isinstance(splits, dict) else None
    count = entry.get("num_examples") if isinstance(entry, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def read_save_to_disk(folder: str | os.PathLike) -> list[LocatedRow]:
    """Every row of a `Dataset.save_to_disk` folder, shards in state.json's order, checked
    against the count dataset_info.json declares for state.json's split."""
    folder = Path(folder)
    if (folder / DICT_FILE).is_file():
        names = sorted(p.name for p in folder.iterdir() if (p / STATE_FILE).is_file())
        raise ArrowFileError(
            f"{folder}: a DatasetDict folder (splits: {', '.join(names) or 'none found'}); name "
            f"one split's folder, e.g. {folder / (names[0] if names else 'train')} (in a mixture "
            f"file: {folder / '{split}'})")
    files, split = _shards(folder)
    rows: list[LocatedRow] = []
    for f in files:
        rows.extend(read_arrow_stream(f, first_index=len(rows)))
    declared = declared_count(folder, split)
    if declared is not None and declared != len(rows):
        raise ArrowFileError(
            f"{folder / INFO_FILE}: declares {declared} rows for split {split!r} "
            f"(splits.{split}.num_examples) but the data files hold {len(rows)}: an incomplete "
            "copy, or a dataset filtered or selected before save_to_disk (datasets keeps the "
            f"original count; if the rows are as intended, delete \"splits\" from {INFO_FILE})")
    return rows


def read_table(path: str | os.PathLike) -> list[LocatedRow]:
    """Every row of a Parquet file or a save_to_disk folder (see `is_table_path`)."""
    p = Path(path)
    if p.is_dir():
        return read_save_to_disk(p)
    if not p.exists():
        raise ArrowFileError(f"{p}: no such file or folder")
    return read_parquet(p)


def column_names(path: str | os.PathLike) -> list[str]:
    """The column names of a Parquet file or save_to_disk folder, reading only the schema."""
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    p = Path(path)
    target = _shards(p)[0][0] if p.is_dir() else p
    try:
        if p.is_dir():
            with open(target, "rb") as f:
                head = f.read(len(IPC_FILE_MAGIC))
                f.seek(0)
                opener = ipc.open_file if head == IPC_FILE_MAGIC else ipc.open_stream
                return list(opener(f).schema.names)
        return list(pq.read_schema(target).names)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise ArrowFileError(f"{target}: cannot read its schema ({error_text(e)})") from None
