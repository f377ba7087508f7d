"""`flan-jax check FILE|TASK`: validate your data, see it rendered, and see which tokens teach.

    flan-jax check my_data.jsonl                      # format guessed: alpaca / chat / cot
    flan-jax check my_cot.tsv                         # CoT TSV (question, answer, rationale)
    flan-jax check pairs.tsv --format tsv --columns question,answer
    flan-jax check chats.jsonl --chat_template chatml # per-turn loss masks (data/tasks/chat_tasks.py);
                                                      # --chat_markup text if the vocabulary lacks <|im_start|>
    flan-jax check flan_mini.add:zs_opt               # any task name
    flan-jax check train.parquet                      # HF datasets files: Parquet, or a
    flan-jax check my_dataset/train                   # save_to_disk folder (Arrow shards)

For a FILE, every row is validated first (pure Python, flan_jax.data.sources.local_files) and *every*
problem is printed, one line each ("path:line: field ..."), then the counts; any problem exits
with status 2 before anything else runs. A clean file (or a TASK) is then registered exactly as
a mixture would register it, `-n` examples are printed as text, and the first packed row the
trainer's pipeline (flan_jax.data.features.pipeline) builds from it is printed token by token, with the
tokens that carry loss (loss weight 1) inside ⟦ ⟧:

    packed row 0 (decoder, 128 decoder positions): 2 examples, 20 tokens, 6 carry loss (marked ⟦ ⟧)
    [1] ▁A dd ▁ 2 ▁and ▁ 3 . ⟦▁ 5 </s>⟧
    [2] ▁Name ▁a ▁co lou r . ⟦▁B lue </s>⟧
    padding: 108 positions

`--json` prints the same as one JSON object (counts, problems, the row's ids, pieces, loss
weights and segment ids). Format guessing: ".tsv" -> cot; ".json" -> alpaca; ".jsonl" -> the
first row's keys ("messages" -> chat, "instruction" -> alpaca, "chain_of_thought" -> cot);
".parquet" and save_to_disk folders -> their column names, the same way;
an empty file is reported as empty whatever its format.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from flan_jax.data.sources import arrow_files, local_files
from flan_jax.errors import FlanJaxError

FORMATS = ("alpaca", "chat", "cot", "jsonl", "tsv")
CHAT_TEMPLATES = ("flan", "chatml", "llama3", "gemma")
LOSS_OPEN, LOSS_CLOSE = "⟦", "⟧"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="a data file or a task name (e.g. flan_mini.add:zs_opt)")
    parser.add_argument("--format", choices=FORMATS, help="file format (default: guessed)")
    parser.add_argument("--columns", default="",
                        help="jsonl/tsv files: comma-separated columns, the last is the target")
    parser.add_argument("--chat_template", choices=CHAT_TEMPLATES,
                        help="chat files: render with this chat template and per-turn loss "
                             "masks (default: FLAN style, the last assistant turn is the target)")
    parser.add_argument("--chat_markup", choices=("special", "text"), default="special",
                        help="chat templates: 'special' (default) needs the template's special "
                             "strings as single vocabulary tokens; 'text' trains them as text")
    parser.add_argument("-n", type=int, default=2, help="rendered examples to print (default 2)")
    parser.add_argument("--split", default="train", help="split of a task (default train)")
    parser.add_argument("--model_format", default="decoder",
                        choices=("decoder", "prefix_lm", "enc_dec"),
                        help="batch format of the packed row (default decoder)")
    parser.add_argument("--lengths", default="96,32",
                        help="inputs,targets lengths of the packed row (default 96,32)")
    parser.add_argument("--data_dir", default=None, help="root of a task's local data files")
    parser.add_argument("--max_problems", type=int, default=100,
                        help="problems printed before the count (default 100)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def guess_format(path: Path) -> str:
    """The format of a data file from its name and first row (module doc)."""
    if arrow_files.is_table_path(path):
        names = set(arrow_files.column_names(path))
        for key, format in (("messages", "chat"), ("instruction", "alpaca"),
                            ("chain_of_thought", "cot")):
            if key in names:
                return format
        raise FlanJaxError(f"{path}: cannot tell the format from its columns "
                           f"({', '.join(sorted(names))}); pass --format ({', '.join(FORMATS)})")
    if path.suffix == ".tsv":
        return "cot"
    if path.suffix == ".json":
        return "alpaca"
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = next((line for line in f if line.strip()), None)
    except OSError:
        first = ""
    if first is None:
        return "alpaca"  # an empty file: reported as empty, whatever its format
    for key, format in (("messages", "chat"), ("instruction", "alpaca"),
                        ("chain_of_thought", "cot")):
        if re.search(rf'"{key}"\s*:', first[:100_000]):  # a guess: keys of a possibly bad row
            return format
    raise FlanJaxError(f"{path}: cannot tell the file's format from its name or first row; "
                       f"pass --format ({', '.join(FORMATS)})")


def _reader_args(path: Path, format: str, columns: tuple[str, ...]) -> tuple[str, tuple, str | None]:
    """(reader format, required columns, target field) that tasks use for this file."""
    from flan_jax.data.templates.cot import COT_FIELDS

    if format == "cot":
        return ("tsv" if path.suffix == ".tsv" else "jsonl"), COT_FIELDS, "answer"
    if format in ("jsonl", "tsv"):
        if len(columns) < 2:
            raise FlanJaxError(f"{path}: a {format} file needs --columns (at least two, the "
                               "last is the target)")
        return format, columns, columns[-1]
    return format, (), None


def check_file(path: Path, format: str, columns: tuple[str, ...]) -> local_files.Scan:
    reader, required, target = _reader_args(path, format, columns)
    return local_files.scan(path, reader, required, target)


def _register(args: argparse.Namespace, path: Path | None, format: str | None,
              columns: tuple[str, ...], vocabulary, lengths: dict[str, int]) -> str:
    """Registers the file's task (as a mixture would, and as `train` would for these lengths:
    few-shot prompts fit, an over-long example is tokenized only as far as the row keeps) and
    returns the task name."""
    from flan_jax.data.tasks import chat_tasks, registry as tasks
    from flan_jax.data.tasks import catalogue

    config = tasks.fitted_config(tasks.default_render_config(), lengths["inputs"])
    if path is None:
        catalogue.ensure_task(args.target, vocabulary, data_dir=args.data_dir, config=config)
        return args.target
    name = "check_" + re.sub(r"\W", "_", path.stem)
    if format == "chat" and args.chat_template:
        return chat_tasks.register_chat_task(name, str(path), template=args.chat_template,
                                             vocabulary=vocabulary, splits=("train",),
                                             markup=args.chat_markup, lengths=lengths)
    catalogue.register_local_tasks(name, str(path), format=format, splits=("train",),
                               vocabulary=vocabulary, columns=columns, config=config)
    return tasks.task_name("local", name, "zs_noopt")


def piece(vocabulary, token: int) -> str:
    """The sentencepiece piece of one id ("▁Add", "</s>"; a line break shown as "\\n");
    `<id N>` beyond the model."""
    sp = getattr(vocabulary, "tokenizer", None)
    if sp is not None and 0 <= token < sp.get_piece_size():
        return sp.id_to_piece(int(token)).replace("\n", "\\n").replace("\t", "\\t")
    return f"<id {token}>"


def marked_tokens(pieces: list[str], weights: list[int]) -> str:
    """Pieces joined by spaces, runs with loss weight > 0 inside ⟦ ⟧:
    (["▁Add", "▁5", "</s>"], [0, 1, 1]) -> "▁Add ⟦▁5 </s>⟧"."""
    out, inside = [], False
    for p, w in zip(pieces, weights):
        if w and not inside:
            p, inside = LOSS_OPEN + p, True
        elif not w and inside:
            out[-1] += LOSS_CLOSE
            inside = False
        out.append(p)
    if inside:
        out[-1] += LOSS_CLOSE
    return " ".join(out)


def packed_row(task: str, args: argparse.Namespace, lengths: dict[str, int]) -> dict[str, Any]:
    """The first packed row the trainer's pipeline builds from `task` (unshuffled)."""
    from flan_jax.data.features import pipeline

    it = pipeline.batches(task, args.model_format, lengths, batch_size=1, split=args.split,
                          shuffle=False, num_epochs=1, drop_remainder=False)
    batch = next(iter(it), None)
    if batch is None:
        raise FlanJaxError(f"{task}: no example reaches a packed row (all empty or zero-loss)")
    return {k: v[0].tolist() for k, v in batch.items()}


def _lengths(text: str) -> dict[str, int]:
    try:
        inputs, targets = (int(x) for x in text.split(","))
    except ValueError:
        raise FlanJaxError(f"--lengths {text!r}: expected INPUTS,TARGETS, e.g. 96,32") from None
    return {"inputs": inputs, "targets": targets}


def _text(vocabulary, value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return vocabulary.decode([int(t) for t in value])


def run(args: argparse.Namespace) -> int:
    lengths = _lengths(args.lengths)
    path = Path(args.target)
    report: dict[str, Any] = {"target": args.target}
    format = columns = None
    if path.is_file() or arrow_files.is_table_path(path):
        if args.split != "train":
            raise FlanJaxError(f"--split {args.split}: a file is read as one train split; "
                               "--split is for task names")
        columns = tuple(c for c in args.columns.split(",") if c)
        format = args.format or guess_format(path)
        try:
            result = check_file(path, format, columns)
        except local_files.LocalFileError as e:  # unreadable as a whole (missing, not UTF-8)
            result = local_files.Scan([], [e])
        total = len(result.rows) + len(result.problems)
        report.update(format=format, rows=total, valid=len(result.rows),
                      problems=[str(p) for p in result.problems])
        summary = (f"{path}: {format} file, {total} rows: {len(result.rows)} valid, "
                   f"{len(result.problems)} with problems")
        if result.problems:
            shown = result.problems[:args.max_problems]
            for problem in shown:
                print(problem, file=sys.stderr)
            if len(result.problems) > len(shown):
                print(f"... and {len(result.problems) - len(shown)} more", file=sys.stderr)
            print(json.dumps(report) if args.json else summary)
            return 2
        if not args.json:
            print(summary)
    elif not re.fullmatch(r"[\w.]+:\w+", args.target):
        raise FlanJaxError(f"{args.target}: no such file, and not a task name (collection.name:variant)")
    else:
        path = None
    from flan_jax.data.tasks.registry import default_vocabulary

    vocabulary = default_vocabulary()
    task = _register(args, path, format, columns or (), vocabulary, lengths)
    import seqio

    from flan_jax.data.tasks.registry import unknown

    provider = seqio.get_mixture_or_task(task)
    if args.split not in provider.splits:
        raise unknown(f"split of {task}", args.split, provider.splits)
    dataset = provider.get_dataset(
        None, split=args.split, shuffle=False, use_cached=False, try_in_mem_cache=False)
    examples = []
    for ex in dataset.take(args.n).as_numpy_iterator():
        examples.append({
            "inputs": _text(vocabulary, ex.get("inputs_pretokenized", ex["inputs"])),
            "targets": _text(vocabulary, ex.get("targets_pretokenized", ex["targets"]))})
    row = packed_row(task, args, lengths)
    pieces = [piece(vocabulary, t) for t in row["decoder_target_tokens"]]
    report.update(task=task, examples=examples, packed_row={**row, "pieces": pieces})
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(f"task {task}")
    for i, ex in enumerate(examples):
        print(f"=== example {i}\n--- inputs\n{ex['inputs']}\n--- targets\n{ex['targets']}")
    _print_row(row, pieces, vocabulary, args.model_format)
    return 0


def _print_row(row: dict[str, list[int]], pieces: list[str], vocabulary, model_format: str) -> None:
    segments = row["decoder_segment_ids"]
    weights = row["decoder_loss_weights"]
    used = sum(1 for s in segments if s)
    print(f"\npacked row 0 ({model_format}, {len(segments)} decoder positions): "
          f"{max(segments, default=0)} examples, {used} tokens, {sum(weights)} carry loss "
          f"(marked {LOSS_OPEN} {LOSS_CLOSE})")
    for s in range(1, max(segments, default=0) + 1):
        idx = [i for i, seg in enumerate(segments) if seg == s]
        line = marked_tokens([pieces[i] for i in idx], [weights[i] for i in idx])
        if "encoder_segment_ids" in row:
            enc = [piece(vocabulary, t) for t, seg in
                   zip(row["encoder_input_tokens"], row["encoder_segment_ids"]) if seg == s]
            print(f"[{s}] encoder (no loss): {' '.join(enc)}\n    decoder: {line}")
        else:
            print(f"[{s}] {line}")
    print(f"padding: {len(segments) - used} positions")
