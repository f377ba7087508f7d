"""Rank classification: score every answer option's log-likelihood given the inputs, pick the best.

This is how FLAN scores tasks with answer options: the model is not asked to produce the option
text, it only has to rank the options, so a model that knows the answer but phrases it
differently is not penalised.

One batch row per (example, option), built by the feature converter of the model's format
(`data.features`), so the scored rows are exactly what training feeds the model:

    example  {"inputs": [7, 8, 5], "options": ["yes", "no"]}      options tokenized: yes -> [31],
                                                                   no -> [40, 41]; EOS 1 appended
    rows     (ex 0, "yes"): inputs [7, 8, 5], targets [31, 1]
             (ex 0, "no"):  inputs [7, 8, 5], targets [40, 41, 1]
    score    sum over target positions of log p(target token | inputs, earlier targets),
             i.e. sum(log_softmax(logits)[t, target_t] * loss_weight_t)
    choice   argmax over the example's options; with length_normalize, of score / num target
             tokens (EOS included), which stops long options being penalised for their length.

Rows are cut into batches of a fixed `batch_size` with the last one filled with all-padding rows
(weight 0), so one jit compilation serves every batch and every task of the same lengths. With a
mesh the rows are split over its data axes (`train.mesh.batch_sharding`). Causal decoders
without a mesh score the same rows from one pass per prompt, each prompt with its options after
it in a packed tree row and the output head at scored positions only (`eval.packed_scoring`;
`eval.prompt_sharing` is the earlier one-prompt-per-row path): equal log-likelihoods, a
fraction of the work.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.data.features import converters as features
from flan_jax.eval import conventions, prompt_sharing, scoring
from flan_jax.errors import FlanJaxError



class NoOptionsError(FlanJaxError):
    """Rank classification was asked for an example (or task) without answer options."""


@dataclasses.dataclass
class RankResult:
    """Per example: the chosen option index, the option texts and their scores."""

    predictions: list[int]
    options: list[list[str]]
    log_likelihoods: list[np.ndarray]  # summed log p of each option's tokens (EOS included)
    num_tokens: list[np.ndarray]  # target tokens scored per option
    scores: list[np.ndarray]  # what the argmax ran over (normalized or not)
    truncated_rows: int = 0  # (example, option) rows cut to the sequence lengths

    @property
    def predicted_options(self) -> list[str]:
        return [opts[i] for opts, i in zip(self.options, self.predictions)]


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def example_options(example: Mapping[str, Any], where: str) -> list[str]:
    options = [_text(o) for o in np.asarray(example.get("options", []), dtype=object).reshape(-1)]
    if not options:
        raise NoOptionsError(
            f"{where}: no answer options, so it cannot be rank-classified; evaluate it by "
            "generation, or use a task variant that keeps options (zs_opt, fs_opt, eval)")
    return options


def option_rows(
    examples: Sequence[Mapping[str, Any]],
    vocabulary: Any,
    format_name: str,
    lengths: Mapping[str, int],
    where: str = "example",
    bos_id: int = 0,
) -> tuple[list[features.Segment], np.ndarray, list[list[str]], int]:
    """(one segment per (example, option), owning example index per segment, options, truncated).

    `examples[i]["inputs"]` are token ids (no EOS); options are strings, tokenized here with the
    vocabulary's EOS id (`data.vocab.eos_id`) appended.
    """
    from flan_jax.data.features.vocab import eos_id

    eos = eos_id(vocabulary)
    lengths = features.check_lengths(lengths)
    segments, owner, all_options, truncated = [], [], [], 0
    for i, ex in enumerate(examples):
        at = f"{where} {i}"
        options = example_options(ex, at)
        all_options.append(options)
        for option in options:
            ids = list(vocabulary.encode(option)) + [eos]
            seg, outcome = features.example_to_segment(
                {"inputs": np.asarray(ex["inputs"], np.int32), "targets": np.asarray(ids, np.int32)},
                format_name, lengths, "truncate", where=f"{at}, option {option!r}", bos_id=bos_id)
            truncated += outcome == "truncated"
            segments.append(seg)
            owner.append(i)
    return segments, np.asarray(owner, np.int64), all_options, truncated


def _padding_segment() -> features.Segment:
    """A row that scores nothing: no token at all (all zeros, weight 0, after assembly)."""
    empty = np.zeros(0, np.int32)
    return features.Segment(empty, empty, empty, 0)


def fixed_batches(
    segments: Sequence[features.Segment], format_name: str, lengths: Mapping[str, int],
    batch_size: int, bos_id: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """Unpacked batches of exactly `batch_size` rows; the last is filled with empty rows.
    `bos_id` starts the decoder formats' rows (`features.model_bos_id`)."""
    pad = _padding_segment()
    for start in range(0, len(segments), batch_size):
        chunk = list(segments[start:start + batch_size])
        chunk += [pad] * (batch_size - len(chunk))
        yield features.assemble_rows([[s] for s in chunk], format_name, lengths, packed=False, bos_id=bos_id)


def score_fn(model: Any, max_targets: int | None = None):
    """A jitted (params, batch) -> (log-likelihood [B], tokens [B]) for `model` (cached, so
    repeated calls with the same shapes reuse one compilation).

    `max_targets`: an upper bound on the weighted positions of a row (the targets length);
    models that return their hidden states then apply the output head at those positions only
    (`scoring.target_logits`), which is most of the cost with a large vocabulary."""

    def build():
        def score(params: Any, batch: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
            logits, targets, weights = scoring.target_logits(model, params, dict(batch), max_targets)
            return scoring.weighted_log_likelihood(logits, targets, weights)
        return score

    return scoring.jitted_per_model(model, ("rows", max_targets), build)


def run_batches(model: Any, params: Any, batches: Iterator[dict[str, np.ndarray]], mesh: Any = None,
                max_targets: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scores every row of every batch; returns concatenated (log-likelihoods, token counts)."""
    fn = score_fn(model, max_targets)
    lls, counts = [], []
    for batch in batches:
        if mesh is not None:
            ll, n = _on_mesh(fn, params, batch, mesh)
        else:
            ll, n = fn(params, batch)
        lls.append(np.asarray(ll))
        counts.append(np.asarray(n))
    if not lls:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    return np.concatenate(lls), np.concatenate(counts)


def _on_mesh(fn: Any, params: Any, batch: Mapping[str, np.ndarray], mesh: Any):
    import flax.linen as nn  # noqa: PLC0415

    from flan_jax.models.sharding import rules_for_mesh  # noqa: PLC0415
    from flan_jax.train import mesh as mesh_lib  # noqa: PLC0415

    rows = next(iter(batch.values())).shape[0]
    shards = mesh_lib.batch_shards(mesh)
    if rows % shards:
        raise FlanJaxError(f"evaluation batch_size {rows} is not divisible by the {shards} batch "
                           "shards of the mesh (data x fsdp)")
    sharded = jax.device_put(dict(batch), mesh_lib.batch_sharding(mesh))
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules_for_mesh(mesh)):
        return fn(params, sharded)


METHODS = ("packed", "shared", "rows")


def distinct_segments(segments: Sequence[features.Segment], owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first [M] int64, inverse [N] int64): the index of the first of each distinct (owner,
    segment) pair, in order, and for each of the N segments the position of its copy in `first`.

    Options of one example that are the same tokens once cut to the targets length (PIQA's long
    solutions that differ only after it) are then scored once and share their score, so their tie
    is exact under every method and argmax picks the first, as one row per option does; the tree
    rows score such twins at different row positions and would break the tie by float32 noise
    (docs/main_job.md, the PIQA row). Example: owner [0, 0, 0, 1] and segments A B A A ->
    first [0, 1, 3], inverse [0, 1, 0, 2] (the A of example 1 is its own).
    """
    index: dict[tuple, int] = {}
    inverse = np.asarray([index.setdefault((int(o), s.prefix, s.encoder.tobytes(), s.decoder.tobytes(),
                                            s.weights.tobytes()), len(index))
                          for s, o in zip(segments, owner)], np.int64).reshape(-1)
    return np.unique(inverse, return_index=True)[1].astype(np.int64), inverse


def score_segments(model: Any, params: Any, segments: Sequence[features.Segment], owner: np.ndarray,
                   lengths: Mapping[str, int], batch_size: int = 32, mesh: Any = None, method: str = "packed"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(log-likelihood [N], scored tokens [N]) of `option_rows`' segments by one of METHODS.

    Causal decoders without a mesh: "packed" (`eval.packed_scoring`: each prompt with its options
    after it in one tree row, several to a row, one forward pass, the head at scored positions
    only; the fastest) or "shared" (`eval.prompt_sharing`, one padded prompt row per example;
    kept as the reference); every other model, a mesh, or "rows": one row per (example, option)
    in batches of `batch_size`.
    All three give equal scores up to float32 noise; an example's identical segments are scored
    once (`distinct_segments`), so their scores are equal exactly.
    """
    if method not in METHODS:
        raise FlanJaxError(f"scoring method {method!r} is not one of {METHODS}")
    first, inverse = distinct_segments(segments, owner)
    segments, owner = [segments[j] for j in first], np.asarray(owner)[first]
    bos = features.model_bos_id(model)
    if mesh is None and prompt_sharing.supports(model) and method == "packed":
        from flan_jax.eval import packed_scoring  # noqa: PLC0415

        ll, n = packed_scoring.score_segments(model, params, segments, owner, bos)
    elif mesh is None and prompt_sharing.supports(model) and method == "shared":
        ll, n = prompt_sharing.score_segments(model, params, segments, owner, bos, batch_size)
    else:
        batches = fixed_batches(segments, model.FEATURE_FORMAT, lengths, batch_size, bos)
        ll, n = run_batches(model, params, batches, mesh, max_targets=int(lengths["targets"]))
    return np.asarray(ll)[inverse], np.asarray(n)[inverse]


def rank_classify(
    model: Any,
    params: Any,
    examples: Sequence[Mapping[str, Any]],
    *,
    vocabulary: Any,
    lengths: Mapping[str, int],
    batch_size: int = 32,
    length_normalize: bool = False,
    mesh: Any = None,
    where: str = "example",
    method: str = "packed",
) -> RankResult:
    """Pick each example's highest-scoring option (see the module docstring).

    examples: dicts with "inputs" (int token ids, no EOS) and "options" (non-empty list of str).
    lengths: {"inputs": Li, "targets": Lt}, fixed for every batch (one compilation).
    where: names the task in errors ("task flan_mini.mini_parity:eval, example 3: ...").
    method: how the rows are scored (`score_segments`; equal scores, "packed" the fastest).
    """
    if batch_size < 1:
        raise FlanJaxError(f"batch_size must be >= 1, got {batch_size}")
    if not examples:
        raise FlanJaxError(f"{where}: no examples to rank-classify (empty split?)")
    fmt = model.FEATURE_FORMAT
    segments, owner, options, truncated = option_rows(examples, vocabulary, fmt, lengths, where,
                                                      features.model_bos_id(model))
    ll, n = score_segments(model, params, segments, owner, lengths, batch_size, mesh, method)
    scores = ll / np.maximum(n, 1.0) if length_normalize else ll
    result = RankResult([], options, [], [], [], truncated)
    for i in range(len(examples)):
        mine = owner == i
        result.log_likelihoods.append(ll[mine])
        result.num_tokens.append(n[mine])
        result.scores.append(scores[mine])
        result.predictions.append(int(np.argmax(scores[mine])))
    return result


# ----------------------------------------------------------------------------- named conventions


@dataclasses.dataclass
class OptionScores:
    """Per example, each option's scores under one convention (`eval.conventions`).

    log_likelihoods[i][k]: log P(continuation of option k | prompt of example i), summed over its
    tokens, in nats; num_tokens[i][k]: tokens scored; unconditional[i][k] (with mutual_info):
    log P(continuation | no prompt). `choices[metric][i]`: the option index the metric picks.
    """

    convention: str
    options: list[list[str]]
    log_likelihoods: list[np.ndarray]
    num_tokens: list[np.ndarray]
    unconditional: list[np.ndarray] | None
    choices: dict[str, list[int]]
    truncated_rows: int = 0


def score_pairs(model: Any, params: Any, pairs: Sequence[conventions.Pair], owner: np.ndarray,
                lengths: Mapping[str, int], batch_size: int = 32, mesh: Any = None, where: str = "example",
                keep_context_end: bool = False, method: str = "packed") -> tuple[np.ndarray, np.ndarray, int]:
    """(log-likelihood [N], scored tokens [N], truncated rows) of N (context, continuation) pairs.

    Pairs with the same `owner` must share their context (causal decoders score them from one
    prompt pass, `eval.prompt_sharing`). Every continuation token is scored (weight 1). Rows
    longer than `lengths` are cut and counted: the continuation keeps its beginning; the
    context its beginning (seqio's rule, `rank_classify`'s) or with `keep_context_end` its end
    (the harness left-truncates contexts, so the question nearest the answer stays).
    """
    fmt = model.FEATURE_FORMAT
    lengths = features.check_lengths(lengths)
    segments, truncated = [], 0
    for j, (context, continuation) in enumerate(pairs):
        cut = keep_context_end and context.size > lengths["inputs"]
        if cut:
            context = context[context.size - lengths["inputs"]:]
        seg, outcome = features.example_to_segment(
            {"inputs": context, "targets": continuation}, fmt, lengths, "truncate", where=f"{where}, row {j}")
        truncated += cut or outcome == "truncated"
        segments.append(seg)
    ll, n = score_segments(model, params, segments, owner, lengths, batch_size, mesh, method)
    return np.asarray(ll, np.float64), np.asarray(n), truncated


def score_options(
    model: Any,
    params: Any,
    examples: Sequence[Mapping[str, Any]],
    *,
    vocabulary: Any,
    lengths: Mapping[str, int],
    convention: str = "flan",
    mutual_info: bool = False,
    length_normalize: bool = False,
    target_delimiter: str = conventions.TARGET_DELIMITER,
    batch_size: int = 32,
    mesh: Any = None,
    where: str = "example",
    method: str = "packed",
) -> OptionScores:
    """Score every option of every example under a named convention and pick per metric.

    examples: dicts with "options" (non-empty list of str) and, per convention, "inputs" (token
    ids, no EOS; flan) or "inputs_pretokenized" (the prompt text; lm_eval).
    convention: "flan" (option + EOS given the inputs) or "lm_eval" (delimiter + option, no EOS,
    given the prompt text); see `eval.conventions` for both and for `acc_mutual_info`. A prompt
    longer than lengths["inputs"] keeps its beginning under flan (as `rank_classify`), its end
    under lm_eval (as the harness).
    method: `score_segments`' METHODS (equal scores within float32 noise; "packed" the fastest).
    Returns OptionScores with `choices` = {"acc": [...]} (flan), {"acc": [...], "acc_norm":
    [...]} (lm_eval), plus "acc_mutual_info" when `mutual_info`.
    """
    from flan_jax.data.features.vocab import eos_id  # noqa: PLC0415

    conventions.check_conventions([convention])
    if batch_size < 1:
        raise FlanJaxError(f"batch_size must be >= 1, got {batch_size}")
    if not examples:
        raise FlanJaxError(f"{where}: no examples to rank-classify (empty split?)")
    eos, fmt = eos_id(vocabulary), model.FEATURE_FORMAT
    pairs, owner, options = [], [], []
    for i, ex in enumerate(examples):
        opts = example_options(ex, f"{where} {i}")
        options.append(opts)
        for option in opts:
            pairs.append(conventions.option_pair(ex, option, vocabulary, convention, fmt, eos,
                                                 target_delimiter, where=f"{where} {i}"))
            owner.append(i)
    unconditional_index: dict[str, int] = {}
    if mutual_info:  # one row per distinct option, each its own (empty) prompt
        for opts in options:
            for option in opts:
                if option not in unconditional_index:
                    unconditional_index[option] = len(pairs)
                    pairs.append(conventions.unconditional_pair(option, vocabulary, convention, fmt, eos,
                                                                target_delimiter))
                    owner.append(len(examples) + len(unconditional_index))
    ll, n, truncated = score_pairs(model, params, pairs, np.asarray(owner, np.int64), lengths, batch_size,
                                   mesh, where, keep_context_end=convention == "lm_eval", method=method)
    result = OptionScores(convention, options, [], [], [] if mutual_info else None, {}, truncated)
    start = 0
    for opts in options:
        rows = slice(start, start + len(opts))
        start += len(opts)
        result.log_likelihoods.append(ll[rows])
        result.num_tokens.append(n[rows])
        uncond = None
        if mutual_info:
            uncond = ll[[unconditional_index[o] for o in opts]]
            result.unconditional.append(uncond)
        picked = conventions.choose(convention, ll[rows], opts, n[rows], uncond, length_normalize)
        for metric, k in picked.items():
            result.choices.setdefault(metric, []).append(k)
    return result


def accuracy_by_convention(
    model: Any, params: Any, examples: Sequence[Mapping[str, Any]], targets: Sequence[str], *,
    vocabulary: Any, lengths: Mapping[str, int], scoring: Sequence[str] = ("flan",), mutual_info: bool = False,
    length_normalize: bool = False, batch_size: int = 32, mesh: Any = None, where: str = "example",
) -> tuple[list[str], dict[str, dict[str, float]], int]:
    """Score `examples` under every convention of `scoring` against their gold option texts.

    Returns (the options the first convention's `acc` picks, {convention: {metric: accuracy
    x100}}, the most rows any convention truncated). Example: scoring ("flan", "lm_eval") ->
    ({"flan": {"acc": 60.0}, "lm_eval": {"acc": 55.0, "acc_norm": 58.0}}).
    """
    predictions: list[str] | None = None
    by_convention: dict[str, dict[str, float]] = {}
    truncated = 0
    for convention in conventions.check_conventions(scoring):
        scored = score_options(model, params, examples, vocabulary=vocabulary, lengths=lengths,
                               convention=convention, mutual_info=mutual_info, length_normalize=length_normalize,
                               batch_size=batch_size, mesh=mesh, where=where)
        by_convention[convention] = {
            metric: 100.0 * float(np.mean([opts[k] == t for opts, k, t in zip(scored.options, picks, targets)]))
            for metric, picks in scored.choices.items()}
        if predictions is None:
            predictions = [opts[k] for opts, k in zip(scored.options, scored.choices["acc"])]
        truncated = max(truncated, scored.truncated_rows)
    return predictions or [], by_convention, truncated
