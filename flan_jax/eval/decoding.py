"""Generation with the models' decode caches: greedy, beam search, temperature/top-k/top-p sampling.

Both model families sit behind one two-call interface, so the search loops are written once:

    start(params, prompt) -> (logits of the first target token [B, V], state)
    step(params, tokens [B], state) -> (logits of the next token [B, V], state)

* enc-dec (T5): `start` encodes once, builds the cache (cross keys/values computed once) and
  feeds BOS (id 0); `step` is one `T5.decode_step`.
* decoder (causal or prefix LM): `start` prefills the prompt `[BOS, inputs...]` (BOS from
  `data.features.model_bos_id(model)`: 0 unless the model's config sets `bos_id`) in one
  `Decoder.decode` call (right padding gets segment id 0, so no row sees another's padding; a
  prefix LM marks the prompt bidirectional) and reads each row's logits at its last prompt
  position; `step` appends one token at position prompt_length + k.

Worked example (decoder, inputs [[7, 8], [5]], input_length 3):

    prompt tokens   [[0, 7, 8, 0], [0, 5, 0, 0]]   segment ids [[1, 1, 1, 0], [1, 1, 0, 0]]
    first logits    from positions 2 and 1; generated token k sits at position 3 + k, 2 + k
    output          [[12, 40, 1, 0, ...], [9, 1, 0, ...]] -> trimmed at EOS: [12, 40], [9]

Sequences stop at EOS (id 1); finished rows keep feeding padding until every row is done or
`max_decode_length` tokens were produced. Each search is one jitted `lax.while_loop`; batches
have a fixed `batch_size` (the last one padded), so one compilation serves a whole evaluation.

Beam search keeps `beam_size` live hypotheses per example and ranks finished ones by
log p / ((5 + length) / 6) ** alpha (GNMT / T5's length penalty; alpha = 0 is plain log p;
length counts the EOS). Each step looks at the best 2K extensions: those ending in EOS that rank
within the top K are finished, the best K others stay live (fairseq's rule; with K = 1 this is
exactly greedy search). It stops early once no live hypothesis can beat the worst kept finished
one (a live log p only falls, so its best possible score is log p / penalty(max length)).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.data.features.converters import model_bos_id
from flan_jax.data.templates.spec import COT_ANSWER_MARKER
from flan_jax.errors import FlanJaxError
from flan_jax.eval import scoring

EOS_ID = 1  # T5's and our vocabulary's; DecodeConfig.eos_id carries the vocabulary's own
METHODS = ("greedy", "beam", "sample")
NEG_INF = -1.0e9  # finite stand-in for -inf: keeps arithmetic NaN-free


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    """How to search; `temperature=0` in sampling means greedy."""

    method: str = "greedy"
    max_decode_length: int = 32
    beam_size: int = 4
    alpha: float = 0.6  # length penalty exponent (beam search)
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k filter
    top_p: float = 1.0  # 1.0: no nucleus filter
    seed: int = 0
    eos_id: int = EOS_ID  # where a sequence ends: the vocabulary's (data.vocab.eos_id)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise FlanJaxError(f"decode method {self.method!r} is not one of {METHODS}")
        if self.eos_id < 1:
            raise FlanJaxError(f"decode config: eos_id must be > 0 (0 is padding), got {self.eos_id}")
        if self.max_decode_length < 1 or self.beam_size < 1 or self.top_k < 0:
            raise FlanJaxError(f"decode config {self}: lengths, beam_size must be >= 1, top_k >= 0")
        if not 0.0 < self.top_p <= 1.0 or self.temperature < 0 or self.alpha < 0:
            raise FlanJaxError(f"decode config {self}: need 0 < top_p <= 1, temperature >= 0, alpha >= 0")


def length_penalty(length: jax.Array | int, alpha: float) -> jax.Array:
    """((5 + length) / 6) ** alpha (Wu et al. 2016, as in T5's beam search)."""
    return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def parse_cot_answer(text: str, marker: str = COT_ANSWER_MARKER) -> str:
    """The answer after the last `marker` in a chain-of-thought output (see eval.metrics)."""
    from flan_jax.data.tasks.metrics import parse_cot_answer as parse  # noqa: PLC0415

    return parse(text, marker)


# ----------------------------------------------------------------------------- model adapters


MIN_PROMPT_WIDTH = 16  # prompt widths are powers of two from this up to the inputs length


def prompt_width(longest: int, input_length: int) -> int:
    """Input tokens per prompt row of a batch whose longest input has `longest` tokens: the
    smallest power of two >= max(longest, MIN_PROMPT_WIDTH), at most `input_length` (so a
    whole evaluation compiles a few widths, not one per length). Example: 41, 256 -> 64."""
    n = max(MIN_PROMPT_WIDTH, min(longest, input_length))
    return min(input_length, 1 << (n - 1).bit_length())


def prompt_batch(model: Any, inputs: Sequence[Sequence[int]], input_length: int, batch_size: int,
                 width: int | None = None) -> tuple[dict[str, np.ndarray], int]:
    """Fixed-shape prompt arrays for `batch_size` rows (inputs cut to `input_length`, rows of
    `width` input tokens, default input_length); returns (arrays, number of inputs truncated).
    Filler rows hold one EOS token so no row is empty."""
    enc_dec = model.FEATURE_FORMAT == "enc_dec"
    bos = model_bos_id(model)
    width = input_length if width is None else width
    width = width if enc_dec else width + 1
    tokens = np.zeros((batch_size, width), np.int32)
    lengths = np.ones(batch_size, np.int32)
    truncated = 0
    for r in range(batch_size):
        ids = np.asarray(inputs[r], np.int32)[:input_length] if r < len(inputs) else np.array([EOS_ID])
        truncated += r < len(inputs) and len(inputs[r]) > input_length
        if enc_dec:
            tokens[r, : ids.size] = ids
            lengths[r] = ids.size
        else:  # [BOS, inputs...]
            if bos and ids.size and int(ids[0]) == bos:
                raise FlanJaxError(f"prompt {r}: starts with the BOS id {bos}, which the prompt "
                                   "builder writes itself (two BOS); tokenize without BOS")
            tokens[r, 0] = bos
            tokens[r, 1 : 1 + ids.size] = ids
            lengths[r] = ids.size + 1
    return {"tokens": tokens, "lengths": lengths}, int(truncated)


class _EncDecStepper:
    def __init__(self, model: Any, max_decode_length: int):
        self.model, self.max_len = model, max_decode_length

    def start(self, params: Any, prompt: Mapping[str, jax.Array]):
        v = {"params": params}
        tokens = prompt["tokens"]
        segments = (tokens != 0).astype(jnp.int32)
        encoded = self.model.apply(v, tokens, segments, method="encode")
        cache = self.model.apply(v, encoded, segments, self.max_len, method="init_decode_cache")
        return self.step(params, jnp.zeros(tokens.shape[0], jnp.int32), cache)

    def step(self, params: Any, tokens: jax.Array, cache: Any):
        logits, cache = self.model.apply({"params": params}, tokens[:, None], cache, method="decode_step")
        return logits[:, 0], cache


class _DecoderStepper:
    def __init__(self, model: Any, max_decode_length: int):
        self.model, self.max_len = model, max_decode_length
        self.prefix_lm = model.FEATURE_FORMAT == "prefix_lm"

    def start(self, params: Any, prompt: Mapping[str, jax.Array]):
        from flan_jax.models.decoder import init_cache  # noqa: PLC0415

        tokens, lengths = prompt["tokens"], prompt["lengths"]
        b, p = tokens.shape
        positions = jnp.broadcast_to(jnp.arange(p, dtype=jnp.int32), (b, p))
        segments = (positions < lengths[:, None]).astype(jnp.int32)
        cache = init_cache(self.model, b, p + self.max_len)
        logits, variables = self.model.apply(
            {"params": params, "cache": cache}, tokens, positions, segments,
            segments if self.prefix_lm else None, method="decode", mutable=["cache"])
        last = jnp.take_along_axis(logits, (lengths - 1)[:, None, None], axis=1)[:, 0]
        return last, (variables["cache"], lengths.astype(jnp.int32))

    def step(self, params: Any, tokens: jax.Array, state: Any):
        cache, next_position = state
        ones = jnp.ones((tokens.shape[0], 1), jnp.int32)
        logits, variables = self.model.apply(
            {"params": params, "cache": cache}, tokens[:, None], next_position[:, None], ones,
            jnp.zeros_like(ones) if self.prefix_lm else None, method="decode", mutable=["cache"])
        return logits[:, 0], (variables["cache"], next_position + 1)


def stepper(model: Any, max_decode_length: int):
    if model.FEATURE_FORMAT == "enc_dec":
        return _EncDecStepper(model, max_decode_length)
    return _DecoderStepper(model, max_decode_length)


# ----------------------------------------------------------------------------- sampling / greedy


def filter_logits(logits: jax.Array, top_k: int = 0, top_p: float = 1.0) -> jax.Array:
    """Logits [B, V] with everything outside the top-k and the top-p nucleus set to NEG_INF.

    The nucleus is the smallest set of most likely tokens whose probability reaches top_p
    (the most likely token is always kept). Example, probs [0.5, 0.3, 0.15, 0.05], top_p 0.7
    -> keeps tokens 0 and 1.
    """
    if top_k:
        kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
        logits = jnp.where(logits < kth, NEG_INF, logits)
    if top_p < 1.0:
        sorted_logits = jnp.sort(logits, axis=-1)[:, ::-1]
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs  # mass of the more likely tokens
        keep = before < top_p
        threshold = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
        logits = jnp.where(logits < threshold, NEG_INF, logits)
    return logits


def _choose(logits: jax.Array, rng: jax.Array, cfg: DecodeConfig) -> jax.Array:
    if cfg.method == "greedy" or cfg.temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = filter_logits(logits / cfg.temperature, cfg.top_k, cfg.top_p)
    return jax.random.categorical(rng, logits, axis=-1).astype(jnp.int32)


def _sample_loop(st: Any, params: Any, prompt: Mapping[str, jax.Array], rng: jax.Array,
                 cfg: DecodeConfig) -> tuple[jax.Array, jax.Array, jax.Array]:
    logits, state = st.start(params, prompt)
    b, t = logits.shape[0], cfg.max_decode_length
    out = jnp.zeros((b, t), jnp.int32)
    done = jnp.zeros(b, bool)
    score = jnp.zeros(b, jnp.float32)

    def cond(carry):
        i, _, _, _, done, _, _ = carry
        return (i < t) & ~jnp.all(done)

    def body(carry):
        i, logits, state, out, done, score, rng = carry
        rng, sub = jax.random.split(rng)
        token = jnp.where(done, 0, _choose(logits, sub, cfg))
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), token[:, None], axis=-1)[:, 0]
        score = score + jnp.where(done, 0.0, logp)
        out = out.at[:, i].set(token)
        done = done | (token == cfg.eos_id)
        logits, state = st.step(params, token, state)
        return i + 1, logits, state, out, done, score, rng

    carry = (jnp.zeros((), jnp.int32), logits, state, out, done, score, rng)
    _, _, _, out, done, score, _ = jax.lax.while_loop(cond, body, carry)
    return out, score, done


# ----------------------------------------------------------------------------- beam search


def _batch_axes(st: Any, params: Any, prompt: Mapping[str, jax.Array], state: Any) -> Any:
    """Per state leaf, the axis that indexes rows (found by comparing shapes at two batch
    sizes, so the loop works with either model's cache layout); None for per-batch scalars."""
    bigger = {k: jnp.concatenate([v, v[:1]], axis=0) for k, v in prompt.items()}
    shapes = jax.eval_shape(st.start, params, bigger)[1]
    return jax.tree.map(row_axis, state, shapes)


def row_axis(small: Any, big: Any) -> int | None:
    """The first axis where two shapes of one leaf (at batch sizes b and b + 1) differ: the
    axis indexing rows; None if they do not differ (a per-batch scalar)."""
    diff = [i for i, (a, c) in enumerate(zip(small.shape, big.shape)) if a != c]
    return diff[0] if diff else None


def _beam_loop(st: Any, params: Any, prompt: Mapping[str, jax.Array], cfg: DecodeConfig
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
    k, t = cfg.beam_size, cfg.max_decode_length
    b = next(iter(prompt.values())).shape[0]
    flat_prompt = {name: jnp.repeat(v, k, axis=0) for name, v in prompt.items()}  # [B*K, ...]
    logits, state = st.start(params, flat_prompt)
    axes = _batch_axes(st, params, flat_prompt, state)
    v = logits.shape[-1]
    penalty = lambda n: length_penalty(n, cfg.alpha)  # noqa: E731

    alive_seq = jnp.zeros((b, k, t), jnp.int32)
    alive_lp = jnp.tile(jnp.asarray([0.0] + [NEG_INF] * (k - 1), jnp.float32), (b, 1))
    fin_seq = jnp.zeros((b, k, t), jnp.int32)
    fin_score = jnp.full((b, k), NEG_INF, jnp.float32)

    def gather_beams(x: jax.Array, index: jax.Array) -> jax.Array:  # x [B, N, ...], index [B, M]
        return jnp.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - 2)), axis=1)

    def cond(carry):
        i, _, _, _, alive_lp, _, fin_score = carry
        best_possible = alive_lp[:, 0] / penalty(t)
        return (i < t) & ~jnp.all(fin_score[:, -1] >= best_possible)

    def body(carry):
        i, logits, state, alive_seq, alive_lp, fin_seq, fin_score = carry
        logp = jax.nn.log_softmax(logits).reshape(b, k, v)
        candidates = (alive_lp[:, :, None] + logp).reshape(b, k * v)
        top_lp, top_index = jax.lax.top_k(candidates, 2 * k)  # [B, 2K]
        source, token = top_index // v, (top_index % v).astype(jnp.int32)
        seqs = gather_beams(alive_seq, source).at[:, :, i].set(token)
        is_eos = token == cfg.eos_id
        # finished: old ones plus EOS candidates ranked within the top K (as fairseq does, so
        # beam_size 1 is greedy search), best K by penalised score
        in_top_k = jnp.arange(2 * k)[None, :] < k
        new_fin = jnp.where(is_eos & in_top_k & (top_lp > NEG_INF / 2), top_lp / penalty(i + 1), NEG_INF)
        all_fin = jnp.concatenate([fin_score, new_fin], axis=1)
        fin_score, pick = jax.lax.top_k(all_fin, k)
        fin_seq = gather_beams(jnp.concatenate([fin_seq, seqs], axis=1), pick)
        # alive: best K candidates that did not end
        alive_lp, pick = jax.lax.top_k(jnp.where(is_eos, NEG_INF, top_lp), k)
        alive_seq = gather_beams(seqs, pick)
        rows = (jnp.arange(b)[:, None] * k + gather_beams(source, pick)).reshape(-1)  # [B*K]
        state = jax.tree.map(lambda x, a: x if a is None else jnp.take(x, rows, axis=a), state, axes)
        logits, state = st.step(params, gather_beams(token, pick).reshape(-1), state)
        return i + 1, logits, state, alive_seq, alive_lp, fin_seq, fin_score

    carry = (jnp.zeros((), jnp.int32), logits, state, alive_seq, alive_lp, fin_seq, fin_score)
    _, _, _, alive_seq, alive_lp, fin_seq, fin_score = jax.lax.while_loop(cond, body, carry)
    # Examples with no finished hypothesis return their best live one.
    any_finished = fin_score[:, 0] > NEG_INF / 2
    best = jnp.where(any_finished[:, None], fin_seq[:, 0], alive_seq[:, 0])
    score = jnp.where(any_finished, fin_score[:, 0], alive_lp[:, 0] / penalty(t))
    return best, score, any_finished


# ----------------------------------------------------------------------------- entry points


def decode_fn(model: Any, cfg: DecodeConfig):
    """A jitted (params, prompt arrays, rng) -> (tokens [B, T], scores [B], finished [B])
    (cached per model and config, so every batch of the same shape reuses one compilation)."""

    def build():
        st = stepper(model, cfg.max_decode_length)

        def run(params: Any, prompt: Mapping[str, jax.Array], rng: jax.Array):
            if cfg.method == "beam":
                return _beam_loop(st, params, prompt, cfg)
            return _sample_loop(st, params, prompt, rng, cfg)
        return run

    return scoring.jitted_per_model(model, ("decode", cfg), build)


def trim_at_eos(tokens: np.ndarray, eos_id: int = EOS_ID) -> list[int]:
    """[12, 40, 1, 0, 0] -> [12, 40]: the tokens before the first EOS or pad id (an untrained
    model may emit the pad id 0, which no text decodes from; see Generations.finished)."""
    out = []
    for tok in np.asarray(tokens).tolist():
        if tok in (eos_id, 0):
            break
        out.append(int(tok))
    return out


@dataclasses.dataclass
class Generations:
    tokens: list[list[int]]  # generated ids per input, EOS and padding removed
    scores: list[float]  # log p (sampling/greedy) or penalised log p (beam) of each output
    finished: list[bool] = dataclasses.field(default_factory=list)  # ended with EOS
    truncated_inputs: int = 0


def generate(
    model: Any,
    params: Any,
    inputs: Sequence[Sequence[int]],
    *,
    config: DecodeConfig = DecodeConfig(),
    input_length: int = 256,
    batch_size: int = 16,
    mesh: Any = None,
) -> Generations:
    """Generate a continuation of each token sequence in `inputs` (no EOS in the inputs)."""
    if batch_size < 1:
        raise FlanJaxError(f"batch_size must be >= 1, got {batch_size}")
    fn = decode_fn(model, config)
    rng = jax.random.PRNGKey(config.seed)
    # Deterministic searches take the inputs shortest first, so each batch's prompt width (a
    # power of two, `prompt_width`) is tight; sampling keeps the given order (its random draws
    # are per batch). Outputs come back in the given order either way.
    sampling = config.method == "sample" and config.temperature > 0
    order = list(range(len(inputs))) if sampling else sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
    out: dict[int, tuple[list[int], float, bool]] = {}
    truncated_inputs = 0
    for start in range(0, len(order), batch_size):
        chunk = [inputs[i] for i in order[start:start + batch_size]]
        width = prompt_width(max(len(x) for x in chunk), input_length)
        prompt, truncated = prompt_batch(model, chunk, input_length, batch_size, width)
        truncated_inputs += truncated
        rng, sub = jax.random.split(rng)
        if mesh is not None:
            tokens, scores, finished = _on_mesh(fn, params, prompt, sub, mesh)
        else:
            tokens, scores, finished = fn(params, prompt, sub)
        tokens, scores, finished = np.asarray(tokens), np.asarray(scores), np.asarray(finished)
        for r, i in enumerate(order[start:start + batch_size]):
            out[i] = (trim_at_eos(tokens[r], config.eos_id), float(scores[r]), bool(finished[r]))
    return Generations([out[i][0] for i in range(len(inputs))], [out[i][1] for i in range(len(inputs))],
                       [out[i][2] for i in range(len(inputs))], truncated_inputs)


def _on_mesh(fn: Any, params: Any, prompt: Mapping[str, np.ndarray], rng: jax.Array, mesh: Any):
    import flax.linen as nn  # noqa: PLC0415

    from flan_jax.models.sharding import rules_for_mesh  # noqa: PLC0415
    from flan_jax.train import mesh as mesh_lib  # noqa: PLC0415

    rows = prompt["tokens"].shape[0]
    if rows % mesh_lib.batch_shards(mesh):
        raise FlanJaxError(f"decoding batch_size {rows} is not divisible by the "
                           f"{mesh_lib.batch_shards(mesh)} batch shards of the mesh")
    sharded = jax.device_put(dict(prompt), mesh_lib.batch_sharding(mesh))
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules_for_mesh(mesh)):
        return fn(params, sharded, rng)


def generate_text(model: Any, params: Any, inputs: Sequence[Sequence[int]], vocabulary: Any,
                  **kwargs: Any) -> list[str]:
    """`generate` stopping at `vocabulary`'s EOS id, then detokenize each output with it."""
    from flan_jax.data.features.vocab import eos_id

    config = dataclasses.replace(kwargs.pop("config", DecodeConfig()), eos_id=eos_id(vocabulary))
    return [vocabulary.decode(ids) for ids in generate(model, params, inputs, config=config, **kwargs).tokens]
