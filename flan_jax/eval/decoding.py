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
from flan_jax.eval.decode_search import _beam_loop, _sample_loop

EOS_ID = 1  # T5's and our vocabulary's; DecodeConfig.eos_id carries the vocabulary's own
METHODS = ("greedy", "beam", "sample")


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
