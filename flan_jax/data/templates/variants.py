"""Task variants: what each one renders (template choice, options block, few-shot setting).

    variant      template (per example)          options           exemplars (setting)
    zs_opt       hash-chosen, any                 "OPTIONS:" block  0
    zs_noopt     hash-chosen, any                 hidden            0
    zs_opt_var   hash-chosen, any                 varied format     0
    fs_opt       hash-chosen among the mix ones   shown             5, template mix
    fs_noopt     same                             hidden            5, template mix
    fs_opt_t0/t1/t2 (and fs_noopt_t*)  few-shot template 0/1/2  5/2/1, template slot
    fs_opt_x, fs_noopt_x  hash-chosen, any        shown / hidden    25 drawn, x-shot
    eval         the first non-inverted template  shown if any      RenderConfig.num_shots
    eval_t<i>    template i (never an inverted one) shown if any    RenderConfig.num_shots

The few-shot settings are Flan 2022's (flan/v2/tasks.py: template_{0,1,2}_{five,two,one}_shot,
template_mix_five_shot, template_0to10_x_shot; see flan_jax.data.templates.fewshot for the formats) and
`zs_opt_var` is its `template_0to10_non_deter_opt_zero_shot`. Training few-shot variants drop
an example whose exemplars were all pruned away (FLAN's `filter_zero_shot_in_few_shot`);
evaluation variants keep every example.

Datasets without answer options have no `*_opt*` variant (it would render as the `*_noopt*`
one and double its weight in a mixture); slot variants exist only for the few-shot templates a
dataset has.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import gin

from flan_jax.data.templates import fewshot
from flan_jax.data.templates.render import (
    OPTION_ENDINGS, OPTION_HEADERS, OPTION_MARKERS, OptionsStyle, example_options,
    format_options_styled, render,
)
from flan_jax.data.templates.spec import DatasetSpec, FewShotTemplate, Fields, Template

DEFAULT_SEED = 0
DEFAULT_POOL_SIZE = 256  # few-shot candidates read from the shuffled train split
EVAL_PREFIX = "eval_t"


@dataclasses.dataclass(frozen=True)
class Setting:
    """How a variant renders: `kind` is "zero", "slot", "mix", "x" or "eval"."""

    kind: str
    options: bool
    shots: int = 0
    slot: int = 0
    varied_options: bool = False


SETTINGS: dict[str, Setting] = {
    "zs_opt": Setting("zero", True),
    "zs_noopt": Setting("zero", False),
    "zs_opt_var": Setting("zero", True, varied_options=True),
    "fs_opt": Setting("mix", True, 5),
    "fs_noopt": Setting("mix", False, 5),
    **{f"fs_{o}_t{slot}": Setting("slot", o == "opt", shots, slot)
       for o in ("opt", "noopt") for slot, shots in ((0, 5), (1, 2), (2, 1))},
    "fs_opt_x": Setting("x", True, 25),
    "fs_noopt_x": Setting("x", False, 25),
    "eval": Setting("eval", True),
}
VARIANTS: tuple[str, ...] = tuple(SETTINGS)


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """The knobs of rendering that change examples (part of a task's registration identity).

    `num_shots`: None keeps each few-shot setting's own count (5/2/1/5/25) and 0 shots for the
    eval variants; a number overrides both (`flan-jax eval --shots K`).
    `max_input_tokens`: exemplars are pruned until exemplars plus prompt fit (None: no limit).
    `inputs_length`: the inputs length of the run the task feeds (train's or eval's
    `lengths["inputs"]`; None: unknown). Few-shot prompts are pruned to
    `min(max_input_tokens, inputs_length)` (`few_shot_budget`), last exemplar first, so the
    example's own question is never what the row cuts; an example whose prompt alone does not
    fit keeps no exemplar (training variants drop it, eval reports it as too long). Inputs text
    far beyond `inputs_length` (more than twice its tokens, by the counter's bound) is cut
    before tokenization, so a pathological row costs what the kept part costs; the pipeline
    still cuts it to the exact length and counts it as truncated.
    `inputs_suffix`: text appended to every rendered input, e.g. "\n" between the prompt and the
    answer for a pretrained decoder-only model, whose `decoder` rows concatenate inputs and
    targets tokens directly (measured on Gemma 3 270M: without a separator an option glued to
    the options list costs the base model up to 45 points, docs/flan_nl.md).
    """

    seed: int = DEFAULT_SEED
    num_shots: int | None = None
    pool_size: int = DEFAULT_POOL_SIZE
    max_input_tokens: int | None = fewshot.FEW_SHOT_MAX_TOKENS
    inputs_suffix: str = ""
    inputs_length: int | None = None

    @property
    def few_shot_budget(self) -> int | None:
        """Tokens exemplars + prompt (+ suffix) must fit: the smaller of the two limits."""
        limits = [n for n in (self.max_input_tokens, self.inputs_length) if n is not None]
        return min(limits) if limits else None


@gin.configurable
def default_render_config(inputs_suffix: str = "") -> RenderConfig:
    """The RenderConfig tasks are registered with unless the caller passes one (gin:
    `default_render_config.inputs_suffix = "\n"`)."""
    return RenderConfig(inputs_suffix=inputs_suffix)


def rendering_identity(config: RenderConfig, variant: str, templates: Sequence[Template]) -> RenderConfig:
    """`config` as far as it changes the rows of `variant` (caches and resume checks compare
    this): the run's inputs length only chooses few-shot exemplars, and zero-shot text cut far
    beyond the row is cut by the pipeline to the same tokens, so zero-shot variants drop it."""
    setting = setting_for(variant, templates)
    if setting is not None and setting.shots:
        return config
    return dataclasses.replace(config, inputs_length=None)


def fitted_config(config: RenderConfig, inputs_length: int | None) -> RenderConfig:
    """`config` for a run whose rows hold `inputs_length` input tokens (train and eval call
    this with their lengths): few-shot prompts pruned to fit it (RenderConfig doc)."""
    return config if inputs_length is None else dataclasses.replace(config, inputs_length=int(inputs_length))


def non_inverted(templates: Sequence[Template]) -> tuple[int, ...]:
    return tuple(i for i, t in enumerate(templates) if not t.inverted)


def eval_variants(templates: Sequence[Template]) -> tuple[str, ...]:
    """`eval_t<i>` for every non-inverted template i."""
    return tuple(f"{EVAL_PREFIX}{i}" for i in non_inverted(templates))


def setting_for(variant: str, templates: Sequence[Template]) -> Setting | None:
    """The variant's setting, or None if the variant does not exist for these templates."""
    if variant in SETTINGS:
        return SETTINGS[variant]
    if variant in eval_variants(templates):
        return Setting("eval", True, slot=int(variant[len(EVAL_PREFIX):]))
    return None


def variants_for(spec: DatasetSpec, templates: Sequence[Template] | None = None) -> tuple[str, ...]:
    """Every variant the dataset has (base variants, then `eval_t<i>`)."""
    templates = spec.templates if templates is None else templates
    num_fs = len(fewshot.fewshot_templates(spec, None if tuple(templates) == tuple(spec.templates) else templates))
    out = []
    for name, s in SETTINGS.items():
        if s.options and s.kind != "eval" and not spec.has_options:
            continue
        if s.kind == "slot" and s.slot >= num_fs:
            continue
        out.append(name)
    return tuple(out) + eval_variants(templates)


def _options_style(n: int) -> OptionsStyle:
    h, m, e = len(OPTION_HEADERS), len(OPTION_MARKERS), len(OPTION_ENDINGS)
    return OptionsStyle(n % h, (n // h) % m, (n // (h * m)) % e)


@dataclasses.dataclass(frozen=True)
class ExampleRenderer:
    """Fields -> one rendered example of a task variant, or None to drop it (pure Python).

    Worked example (rte, variant zs_opt, template 2 chosen by hash):
        fields {"premise": "A cat sat.", "hypothesis": "An animal sat.", "answer": "yes"}
        -> {"inputs": 'Given the text "A cat sat.", ...\\n\\nOPTIONS:\\n- yes\\n- no',
            "targets": "yes", "template_index": 2, "num_shots": 0,
            "options": ["yes", "no"], "answer": "yes"}
    `count_tokens` measures text for pruning (the task's vocabulary; `len` counts characters).
    """

    spec: DatasetSpec
    task: str
    variant: str
    templates: tuple[Template, ...]
    config: RenderConfig = RenderConfig()
    count_tokens: Callable[[str], int] = len
    fs_templates: tuple[FewShotTemplate, ...] = ()

    @property
    def setting(self) -> Setting:
        s = setting_for(self.variant, self.templates)
        if s is None:
            raise ValueError(f"task {self.task!r}: variant {self.variant!r} does not exist here")
        return s

    def _template_of(self, key: str, candidates: Sequence[int]) -> int:
        return candidates[fewshot.choose_template(self.task, self.config.seed, key, len(candidates))]

    def __call__(self, fields: Fields, pool: Sequence[tuple[str, Fields]] = ()
                 ) -> dict[str, Any] | None:
        out = self._render(fields, pool)
        if out is not None and self.config.inputs_suffix:
            out = {**out, "inputs": out["inputs"] + self.config.inputs_suffix}
        chars_for = getattr(self.count_tokens, "chars_for", None)
        if out is not None and self.config.inputs_length and chars_for is not None:
            cut = chars_for(out["inputs"], 2 * self.config.inputs_length)
            if cut is not None:  # far longer than the row: keep what the row can use, and more
                out = {**out, "inputs": out["inputs"][:cut]}
        return out

    def _render(self, fields: Fields, pool: Sequence[tuple[str, Fields]]) -> dict[str, Any] | None:
        s = self.setting
        seed, key = self.config.seed, fewshot.example_key(fields)
        with_options = self.spec.has_options and s.options
        options = list(example_options(self.spec, fields) or ())
        answer = str(fields.get(self.spec.answer_field, ""))
        block = None
        if s.varied_options and with_options:
            style = _options_style(fewshot.stable_int("options_style", self.task, seed, key))
            block, shown, labels = format_options_styled(options, answer, style)
            if labels is not None:
                fields = {**fields, self.spec.answer_field: shown}
                options, answer = list(labels), shown
        shots = s.shots if self.config.num_shots is None else self.config.num_shots
        if s.kind == "eval":
            index = s.slot if self.variant != "eval" else non_inverted(self.templates)[0]
        elif s.kind == "zero":
            index = self._template_of(key, range(len(self.templates)))
        else:
            return self._few_shot(s, fields, pool, shots, with_options, key, options, answer)
        inputs, targets = render(self.spec, index, fields, with_options=with_options,
                                 templates=self.templates, options_block=block)
        kept = 0
        if s.kind == "eval" and shots:
            t = self.templates[index]
            framed = FewShotTemplate(t.inputs, t.targets, *fewshot.FEWSHOT_FORMATS[0])
            chosen = fewshot.choose_exemplars(self.task, seed, key, pool, shots)
            pairs = [render(self.spec, index, ex, with_options=with_options,
                            templates=self.templates) for ex in chosen]
            joined, kept = fewshot.build_slot(framed, pairs, inputs,
                                              max_tokens=self.config.few_shot_budget,
                                              count=self.count_tokens,
                                              suffix=self.config.inputs_suffix)
            inputs = joined if kept else inputs  # nothing fits: the zero-shot prompt as is
        return {"inputs": inputs, "targets": targets, "template_index": index, "num_shots": kept,
                "options": options, "answer": answer}

    def _few_shot(self, s: Setting, fields: Fields, pool: Sequence[tuple[str, Fields]],
                  shots: int, with_options: bool, key: str, options: list, answer: str
                  ) -> dict[str, Any] | None:
        fs = self.fs_templates
        seed, budget, count = self.config.seed, self.config.few_shot_budget, self.count_tokens
        suffix = self.config.inputs_suffix

        def pair(i: int, f: Fields) -> tuple[str, str]:
            return render(self.spec, i, f, with_options=with_options, templates=fs)

        if s.kind == "slot":
            index = s.slot
            chosen = fewshot.choose_exemplars(self.task, seed, key, pool, shots)
            inputs, targets = pair(index, fields)
            inputs, kept = fewshot.build_slot(fs[index], [pair(index, ex) for ex in chosen],
                                              inputs, max_tokens=budget, count=count,
                                              suffix=suffix)
        else:
            candidates = ([i for i, t in enumerate(fs) if t.in_template_mix] if s.kind == "mix"
                          else list(range(len(fs)))) or list(range(len(fs)))
            index = self._template_of(key, candidates)
            chosen = fewshot.choose_exemplars(self.task, seed, key, pool, shots)
            drawn = []
            for ex in chosen:
                i = self._template_of(fewshot.example_key(ex), candidates)
                drawn.append((fs[i], *pair(i, ex)))
            inputs, targets = pair(index, fields)
            if s.kind == "mix":
                sep = fewshot.MIX_SEPARATORS[fewshot.stable_int("separator", self.task, seed)
                                             % len(fewshot.MIX_SEPARATORS)]
                inputs, kept = fewshot.build_mix(fs[index], drawn, inputs, sep,
                                                 max_tokens=budget, count=count, suffix=suffix)
            else:
                inputs, targets, kept = fewshot.build_x(fs[index], drawn, inputs, targets,
                                                        max_tokens=budget, count=count,
                                                        suffix=suffix)
        if kept == 0 and shots > 0:
            return None  # FLAN's filter_zero_shot_in_few_shot
        return {"inputs": inputs, "targets": targets, "template_index": index, "num_shots": kept,
                "options": options, "answer": answer}
