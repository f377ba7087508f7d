"""flan_jax checkpoints as an lm-evaluation-harness model, registered as "flan_jax" (the optional
`lm_eval` extra: `pip install -e .[lm_eval]`, lm-eval 0.4.13).

    import flan_jax.eval.lm_eval_model  # registers "flan_jax" in lm-eval's model registry
    lm_eval.simple_evaluate(model="flan_jax", model_args="checkpoint=CKPT,vocabulary=spm.model",
                            tasks=["my_task"], task_manager=lm_eval.tasks.TaskManager(include_path=DIR))

    flan-jax lm-eval --model flan_jax --model_args checkpoint=CKPT --tasks my_task --include_path DIR

Importing this module registers the class (lm-eval's own pattern); importing `flan_jax` or
`flan_jax.eval` does not. model_args: `checkpoint` (anything `eval/model_loading.py` loads),
`base` (the params dir of a full fine-tuning model_dir), `vocabulary` (sentencepiece / GGUF;
default the tasks' vocabulary), `max_length` (context + continuation tokens, default 1024;
contexts are cut from the left), `batch_size` (default 16), `max_gen_toks` (default 256).

How requests become flan_jax rows (the shapes training uses, `data.features` converters):

    loglikelihood (context, continuation):  the harness's token split for causal models
        (`eval.conventions.split_context_continuation`, as lm-eval's TemplateLM._encode_pair: the
        context's trailing spaces move to the continuation, continuation ids = encode(context +
        continuation)[len(encode(context)):]; enc_dec encodes both apart), no EOS; result (sum of
        log p(continuation), whether every continuation token is the argmax).
        e.g. ("Is ice cold?", " yes") -> inputs [212, 88, 9], targets [31]
        -> decoder row [BOS, 212, 88, 9 | 31], weight on 31 only -> (-0.41, True)
        An empty context scores the continuation after the BOS alone (T5: an EOS encoder input).
    loglikelihood_rolling (text,):  the text's tokens in lm-eval's disjoint rolling windows
        (`lm_eval.utils.get_rolling_token_windows`, max_seq_len = max_length - 1, so a window's
        context and predicted tokens fit max_length), each window's tokens as targets after its
        context; the first is conditioned on the BOS alone (T5: an EOS as encoder input).
    generate_until (context, {"until": [...], "max_gen_toks": n, "do_sample": .., "temperature": ..}):
        `eval.generate.generate_texts` (greedy unless do_sample with temperature > 0), the text cut
        at the first stop string.

So lm-eval's multiple-choice requests (continuation = target_delimiter + choice) score exactly
what `eval.rank_classification.score_options(convention="lm_eval")` scores (the parity test:
tests/eval/test_lm_eval_model.py).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import lm_eval.models  # noqa: F401  (lm-eval's own names first: its registry loads them only when empty)
import numpy as np
from lm_eval import utils as lm_utils
from lm_eval.api.model import LM
from lm_eval.api.registry import model_registry, register_model

from flan_jax.data.features import converters
from flan_jax.eval import conventions, decoding, model_loading, scoring
from flan_jax.eval import generate as gen
from flan_jax.errors import FlanJaxError

NAME = "flan_jax"
_BUCKET = 16  # lengths are rounded up to a power of two >= this: few compilations per run


def _bucket(n: int) -> int:
    size = _BUCKET
    while size < n:
        size *= 2
    return size


def _row_scores(module: Any, params: Any, batch: dict[str, jax.Array], max_targets: int
                ) -> tuple[jax.Array, jax.Array]:
    """(sum of weighted log p(target) [B], every weighted target is the argmax [B]); the head
    runs at the `max_targets` target positions only where the model allows it (a 262k-token
    vocabulary would otherwise make [B, L, V] logits)."""
    logits, targets, weights = scoring.target_logits(module, params, batch, max_targets)
    per_token = scoring.token_log_likelihoods(logits, targets)
    on = weights > 0
    greedy = jnp.all(jnp.where(on, jnp.argmax(logits, axis=-1) == targets, True), axis=-1)
    return jnp.where(on, per_token, 0.0).sum(-1), greedy


def _int_arg(value: Any, name: str, default: int) -> int:
    if value is None or value == "auto" or (isinstance(value, str) and value.startswith("auto")):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FlanJaxError(f"lm-eval model_args: {name} must be an integer, got {value!r}") from None


@register_model(NAME)
class FlanJaxLM(LM):
    """lm-eval's LM interface over any flan_jax checkpoint (see the module docstring)."""

    def __init__(self, checkpoint: str | None = None, base: str | None = None, vocabulary: str | None = None,
                 max_length: int = 1024, batch_size: Any = 16, max_gen_toks: int = 256,
                 **_ignored: Any) -> None:  # lm-eval also passes device, max_batch_size
        super().__init__()
        if not checkpoint:
            raise FlanJaxError("lm-eval model_args: checkpoint=PATH is required (a flan_jax checkpoint)")
        self.loaded = model_loading.load_model(str(checkpoint), base=base)
        self.vocabulary = model_loading.load_vocabulary(str(vocabulary) if vocabulary else None)
        self.module, self.params = self.loaded.module, self.loaded.params
        self.format = self.module.FEATURE_FORMAT
        self.max_length = _int_arg(max_length, "max_length", 1024)
        self.batch_size = _int_arg(batch_size, "batch_size", 16)
        self.max_gen_toks = _int_arg(max_gen_toks, "max_gen_toks", 256)
        from flan_jax.data.features.vocab import eos_id  # noqa: PLC0415

        self.eos_id = eos_id(self.vocabulary)
        self._score = jax.jit(functools.partial(_row_scores, self.module), static_argnums=2)

    # ------------------------------------------------------------------ scoring token rows

    def score_tokens(self, pairs: Sequence[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """(sum log p(targets | inputs), greedy) per (inputs ids, targets ids) pair. Inputs
        are cut from the left to fit `max_length`; an empty target scores (0.0, True)."""
        out: list[tuple[float, bool] | None] = [None] * len(pairs)
        rows = []
        for i, (inputs, targets) in enumerate(pairs):
            if not targets:
                out[i] = (0.0, True)
                continue
            targets = list(targets)[-self.max_length:]
            inputs = list(inputs)[max(0, len(inputs) - (self.max_length - len(targets))):]
            if self.format == "enc_dec" and not inputs:
                inputs = [self.eos_id]  # an encoder needs one token to attend to
            rows.append((i, inputs, targets))
        # longest first, so each batch's padded lengths fit its rows closely
        rows.sort(key=lambda r: -(len(r[1]) + len(r[2])))
        bos = converters.model_bos_id(self.module)
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start:start + self.batch_size]
            lengths = {"inputs": _bucket(max(max(len(r[1]) for r in chunk), 1)),
                       "targets": _bucket(max(len(r[2]) for r in chunk))}
            examples = [{"inputs": np.asarray(r[1], np.int32), "targets": np.asarray(r[2], np.int32)}
                        for r in chunk]
            examples += [examples[-1]] * (self.batch_size - len(chunk))  # one shape per bucket
            batch = converters.convert_examples(examples, self.format, lengths, bos_id=bos)
            ll, greedy = self._score(self.params, {k: jnp.asarray(v) for k, v in batch.items()},
                                     lengths["targets"])
            ll, greedy = np.asarray(ll), np.asarray(greedy)
            for k, (i, _, _) in enumerate(chunk):
                out[i] = (float(ll[k]), bool(greedy[k]))
        return out  # type: ignore[return-value]

    # ------------------------------------------------------------------ lm-eval's interface

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        pairs = []
        for ctx, cont in (r.args for r in requests):
            if ctx:  # the harness's split (TemplateLM._encode_pair), shared with our evaluator
                pairs.append(tuple(list(ids) for ids in conventions.split_context_continuation(
                    ctx, cont, self.vocabulary.encode, self.format)))
            else:  # the harness's empty context: the model's BOS (T5: an EOS encoder input) alone
                pairs.append(([], list(self.vocabulary.encode(cont))))
        results = self.score_tokens(pairs)
        for r, res in zip(requests, results):
            self.cache_hook.add_partial("loglikelihood", r.args, res)
        return results

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        pairs, owner = [], []
        for n, r in enumerate(requests):
            tokens = list(self.vocabulary.encode(r.args[0]))
            # windows of max_length - 1 so context + predicted tokens fit max_length (lm-eval's
            # max_seq_len counts the shifted input, which has one token fewer)
            for window in lm_utils.get_rolling_token_windows(tokens, prefix_token=-1,
                                                             max_seq_len=max(self.max_length - 1, 1),
                                                             context_len=1):
                context, predicted = lm_utils.make_disjoint_window(window)
                pairs.append(([t for t in context if t != -1], predicted))  # -1: our BOS stands there
                owner.append(n)
        totals = [0.0] * len(requests)
        for n, (ll, _) in zip(owner, self.score_tokens(pairs)):
            totals[n] += ll
        for r, total in zip(requests, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", r.args, total)
        return totals

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        results = []
        for context, kwargs in (r.args for r in requests):
            kwargs = dict(kwargs or {})
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            sample = bool(kwargs.get("do_sample")) and float(kwargs.get("temperature", 1.0) or 0.0) > 0
            config = decoding.DecodeConfig(
                "sample" if sample else "greedy",
                max_decode_length=_int_arg(kwargs.get("max_gen_toks"), "max_gen_toks", self.max_gen_toks),
                temperature=float(kwargs.get("temperature", 1.0) or 1.0) if sample else 1.0,
                top_p=float(kwargs.get("top_p", 1.0) or 1.0) if sample else 1.0)
            text = gen.generate_texts(self.module, self.params, self.vocabulary, [context], config,
                                      input_length=self.max_length, batch_size=1)[0].text
            results.append(cut_at_stops(text, until))
            self.cache_hook.add_partial("generate_until", (context, kwargs), results[-1])
        return results


def cut_at_stops(text: str, until: Sequence[str]) -> str:
    """The text before the earliest stop string: ("yes.\\nQ: ...", ["\\n"]) -> "yes."."""
    cut = len(text)
    for stop in until:
        if stop and stop in text:
            cut = min(cut, text.index(stop))
    return text[:cut]


def registered() -> bool:
    """Whether lm-eval's registry resolves "flan_jax" to this class (true once imported)."""
    return model_registry.get(NAME, None) is FlanJaxLM


