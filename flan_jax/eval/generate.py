"""Try a model: prompts (raw text, or a dataset's fields through a named template) -> generated text.

    loaded = model_loading.load_model("runs/main-X/train", base=BASE)
    vocabulary = model_loading.load_vocabulary("gguf:gemma-3-270m")
    renderer = prompt_renderer("flan_nl.nl_nli_people:eval_t0")     # or None: prompts are raw text
    prompts = [render_prompt({"premise": "...", "hypothesis": "..."}, renderer, "line 1")]
    generate_texts(loaded.module, loaded.params, vocabulary, prompts, DecodeConfig("greedy"))
        -> [Generated(prompt=..., text="yes", score=-0.41, finished=True)]

A template is named like a task, `<collection>.<source>:<variant>`, with a zero-shot variant
(`zs_opt`, `zs_noopt`, `zs_opt_var`: the template chosen per example as in training) or an
evaluation variant (`eval`: the first non-inverted template, `eval_t<i>`: template i); few-shot
variants need exemplars from a train split and are refused. A templated prompt is a JSON object
of the dataset's fields; fields only the targets use (the answer) may be left out.

Worked example (raw text, greedy): prompt "Is ice cold?" -> tokens [..] -> decoding.generate
(BOS first for a decoder, EOS-terminated) -> tokens [31, 7] -> vocabulary.decode -> "yes".
Scores are the summed log-probability of the generated tokens (beam: length-penalised).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flan_jax.errors import FlanJaxError
from flan_jax.eval import decoding


@dataclasses.dataclass
class Generated:
    prompt: str  # the text the model saw (after rendering)
    text: str  # generated continuation, decoded, EOS removed
    score: float  # log p of the output (beam search: divided by its length penalty)
    finished: bool  # ended with EOS (False: cut at max_decode_length)


def prompt_renderer(name: str) -> Any:
    """The `ExampleRenderer` of task name `name` (zero-shot or evaluation variant only)."""
    from flan_jax.data.tasks import catalogue  # noqa: PLC0415
    from flan_jax.data.templates import variants  # noqa: PLC0415

    collection, _, rest = name.partition(".")
    source, _, variant = rest.partition(":")
    if not (collection and source and variant):
        raise FlanJaxError(f"template {name!r}: expected <collection>.<source>:<variant>, e.g. "
                           "flan_nl.nl_nli_people:eval_t0")
    if collection not in catalogue.COLLECTIONS:
        raise FlanJaxError(f"template {name!r}: unknown collection {collection!r} "
                           f"({', '.join(catalogue.COLLECTIONS)})")
    for spec in catalogue.importable_datasets(collection):
        if source in spec.sources:
            templates = catalogue.task_templates(spec, collection)
            setting = variants.setting_for(variant, templates)
            if setting is None or setting.kind not in ("zero", "eval") or setting.shots:
                known = [v for v in variants.variants_for(spec, templates)
                         if variants.setting_for(v, templates).kind in ("zero", "eval")]
                raise FlanJaxError(f"template {name!r}: variant {variant!r} is not a zero-shot or eval "
                                   f"variant of {source} (one of {', '.join(known)})")
            return variants.ExampleRenderer(spec, name, variant, templates, variants.default_render_config())
    raise FlanJaxError(f"template {name!r}: no dataset {source!r} in collection {collection!r}")


def render_prompt(item: Any, renderer: Any, where: str) -> str:
    """The prompt text of one item: a raw string, a JSON object {"prompt": str} (raw), or with a
    `renderer` a JSON object of the dataset's fields. FlanJaxError names `where` and the field."""
    if renderer is None:
        if isinstance(item, Mapping):
            if not isinstance(item.get("prompt"), str):
                raise FlanJaxError(f"{where}: needs a string field 'prompt' (or give --template "
                                   "to render a dataset's fields)")
            return item["prompt"]
        if isinstance(item, str):
            return item
        raise FlanJaxError(f"{where}: a prompt must be a string or an object with 'prompt'")
    if not isinstance(item, Mapping):
        raise FlanJaxError(f"{where}: template {renderer.task} renders a JSON object of the "
                           f"dataset's fields ({', '.join(renderer.spec.fields)}), got {type(item).__name__}")
    from flan_jax.data.templates.render import placeholders  # noqa: PLC0415

    spec = renderer.spec
    target_only = {n for t in renderer.templates for n in placeholders(t.targets)} - \
        {n for t in renderer.templates for n in placeholders(t.inputs)}
    fields = {**{n: "" for n in target_only | {spec.answer_field}}, **item}
    try:
        out = renderer(fields)
    except KeyError as e:
        raise FlanJaxError(f"{where}: field {e.args[0]!r} missing for template {renderer.task} "
                           f"(fields: {', '.join(spec.fields)})") from None
    except FlanJaxError as e:
        raise FlanJaxError(f"{where}: {e}") from None
    if out is None:
        raise FlanJaxError(f"{where}: template {renderer.task} dropped this example")
    return out["inputs"]


def read_prompts_jsonl(path: str) -> list[Any]:
    """The JSON values of a JSONL file, one per non-blank line; a line that is not JSON is a
    FlanJaxError naming the file and line."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise FlanJaxError(f"{path}: prompts file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FlanJaxError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    items = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise FlanJaxError(f"{path}:{number}: not JSON ({e.msg} at column {e.colno})") from None
    return items


def generate_texts(module: Any, params: Any, vocabulary: Any, prompts: Sequence[str],
                   config: decoding.DecodeConfig = decoding.DecodeConfig(), *,
                   input_length: int = 512, batch_size: int = 8) -> list[Generated]:
    """Generate a continuation of each prompt, stopping at the vocabulary's EOS."""
    from flan_jax.data.features.vocab import eos_id  # noqa: PLC0415

    if not prompts:
        return []
    config = dataclasses.replace(config, eos_id=eos_id(vocabulary))
    tokens = [list(vocabulary.encode(p)) for p in prompts]
    out = decoding.generate(module, params, tokens, config=config, input_length=input_length,
                            batch_size=min(batch_size, len(prompts)))
    return [Generated(p, vocabulary.decode(t), s, f)
            for p, t, s, f in zip(prompts, out.tokens, out.scores, out.finished)]


def output_records(items: Iterable[Any], results: Iterable[Generated]) -> list[dict[str, Any]]:
    """One JSON record per prompt: the input object (or {"prompt": text}) plus "rendered"
    (when a template changed it), "output", "score" and "finished"."""
    records = []
    for item, g in zip(items, results):
        record = dict(item) if isinstance(item, Mapping) else {"prompt": item}
        if record.get("prompt") != g.prompt:
            record["rendered"] = g.prompt
        record.update(output=g.text, score=round(g.score, 6), finished=g.finished)
        records.append(record)
    return records
