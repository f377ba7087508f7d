"""Rank-classification throughput of a causal decoder: the earlier path against the packed one.

    python bench/eval_throughput.py                 # small Gemma-3-shaped config, flan-nl lengths
    python bench/eval_throughput.py --full          # Gemma 3 270M config (random weights, float32)
    python bench/eval_throughput.py --profile boolq --examples 32 --task-size 8

Both paths score the same examples in one process, one after the other: "shared"
(`eval.prompt_sharing`: one padded prompt row per example, options padded to a power of two, the
head at every option position; the path before `eval.packed_scoring`) and "packed" (the default
of `rank_classification.rank_classify`). Each runs a first pass (with its compilations), then
`--repeats` warm passes interleaved with the other path's (the best one counts). Printed per
path and pass: seconds, examples/s, model FLOP/s and its ratio to the float32 matmul rate measured in this process, and the jit compilations;
then the ratio packed / shared and the largest log-likelihood difference. It asserts that the
two paths pick the same options and agree within float32 noise.

Examples are random token ids with the lengths of real evaluation sets (the tokenizer is not
needed): "flan-nl" the main job's prompts (21-61 Gemma tokens, 2-4 options of 1-6 tokens plus
EOS; issue 23), "rte" (~80-token prompts, 2 options), "boolq" (150-250-token passages, 2
options). `--task-size N` scores them N at a time, as the main job calls rank_classify once per
task. `--generate 256` also decodes the prompts greedily (8 tokens, batches of 16) with rows of
the whole inputs length, as before, and with power-of-two prompt widths (`decoding.prompt_width`,
shortest prompts first), counting equal outputs (random weights make near-ties, which float32
noise may flip; at least 90% must be equal).

Model FLOPs count what any implementation must compute: 2 x the non-embedding parameters per
position run through the body (each prompt token once, BOS included, and each option token) plus
2 x vocab x emb_dim per scored position for the head; attention products are left out. The
machine is shared and noisy: compare the ratio printed by one invocation, not absolute rates.
"""
from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.eval import compilations

PROFILES = {  # prompt tokens (low, high), options per example (low, high), option tokens (low, high)
    "flan-nl": ((21, 61), (2, 4), (1, 6)),
    "rte": ((60, 100), (2, 2), (1, 3)),
    "boolq": ((150, 250), (2, 2), (1, 1)),
}


class WordVocab:
    """Options are texts of words "w<i>"; each word is one token id (what the bench needs)."""

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size

    def encode(self, text: str) -> list[int]:
        return [3 + (int(w[1:]) % (self.vocab_size - 3)) for w in text.split()]


def make_examples(profile: str, n: int, vocab_size: int, seed: int = 0) -> list[dict]:
    (p0, p1), (k0, k1), (t0, t1) = PROFILES[profile]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        inputs = rng.integers(3, vocab_size, int(rng.integers(p0, p1 + 1))).astype(np.int32)
        options = [" ".join(f"w{int(rng.integers(0, 10**6))}" for _ in range(int(rng.integers(t0, t1 + 1))))
                   for _ in range(int(rng.integers(k0, k1 + 1)))]
        out.append({"inputs": inputs, "options": options})
    return out


def model_and_params(full: bool):
    from flan_jax.models.decoder import dummy_batch
    from flan_jax.models.gemma import Gemma3, Gemma3Config

    if full:  # gin_configs/models/gemma3_270m.gin, computed in float32
        cfg = Gemma3Config(dtype="float32")
    else:  # the same shape family, small enough for a shared 2-core machine
        cfg = Gemma3Config(vocab_size=32768, emb_dim=256, num_heads=4, num_kv_heads=1, head_dim=64, mlp_dim=768,
                           num_layers=6, query_pre_attn_scalar=64.0, dtype="float32")
    model = Gemma3(cfg)
    import flax.linen as nn

    params = nn.meta.unbox(jax.jit(lambda: model.init(jax.random.PRNGKey(0), dummy_batch(1, 8))["params"])())
    return model, params, cfg


def model_flops(examples: list[dict], vocab: WordVocab, params, cfg) -> float:
    total = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    body = total - cfg.vocab_size * cfg.emb_dim  # tied head: the table is the embedding
    prompt = sum(len(e["inputs"]) for e in examples)  # BOS + all but the last input token
    scored = sum(len(vocab.encode(o)) + 1 for e in examples for o in e["options"])  # option tokens + EOS
    return 2.0 * body * (prompt + scored) + 2.0 * cfg.vocab_size * cfg.emb_dim * scored


def matmul_rate(size: int = 2048) -> float:
    """float32 GEMM FLOP/s of this process (best of 3)."""
    a = jnp.asarray(np.random.default_rng(0).standard_normal((size, size)), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(3))
    return 2.0 * size**3 / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="Gemma 3 270M config instead of the small one")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="flan-nl")
    ap.add_argument("--examples", type=int, default=None, help="default 48 (--full 32)")
    ap.add_argument("--task-size", type=int, default=0, help="score this many examples per call (0: all)")
    ap.add_argument("--batch-size", type=int, default=32, help="option rows per call of the shared path")
    ap.add_argument("--repeats", type=int, default=2, help="warm passes per path, interleaved (the best counts)")
    ap.add_argument("--generate", type=int, default=0, metavar="INPUTS_LENGTH",
                    help="also time greedy decoding (8 tokens) of the prompts at this inputs length (e.g. 256)")
    args = ap.parse_args(argv)
    from flan_jax.eval.rank_classification import rank_classify

    model, params, cfg = model_and_params(args.full)
    n = args.examples or (32 if args.full else 48)
    vocab = WordVocab(cfg.vocab_size)
    examples = make_examples(args.profile, n, cfg.vocab_size)
    lengths = {"inputs": max(len(e["inputs"]) for e in examples) + 1, "targets": 8}
    size = args.task_size or n
    groups = [examples[i:i + size] for i in range(0, n, size)]
    flops = model_flops(examples, vocab, params, cfg)
    peak = matmul_rate()
    print(f"model {'gemma3-270m' if args.full else 'small gemma3'}, {n} {args.profile} examples in "
          f"{len(groups)} call(s), {flops / n / 1e9:.2f} GFLOP/example; float32 matmul {peak / 1e9:.0f} GFLOP/s")
    results, rates = {}, {}
    phases = [(m, "first") for m in ("shared", "packed")]
    phases += [(m, "warm") for _ in range(args.repeats) for m in ("shared", "packed")]  # interleaved
    for method, phase in phases:
        t = time.perf_counter()
        with compilations.counted() as compiles:
            got = [rank_classify(model, params, g, vocabulary=vocab, lengths=lengths, batch_size=args.batch_size,
                                 method=method) for g in groups]
        secs = time.perf_counter() - t
        rate = flops / secs
        print(f"{method:7s} {phase:5s} {secs:8.2f} s {n / secs:7.2f} examples/s {rate / 1e9:7.1f} GFLOP/s "
              f"({rate / peak:.2f} of matmul)  compilations {len(compiles)} ({sum(compiles):.1f} s)", flush=True)
        rates[method, phase] = max(rates.get((method, phase), 0.0), n / secs)  # the best warm pass
        results[method] = got
    diff = max(float(np.max(np.abs(a - b))) for ra, rb in zip(results["shared"], results["packed"])
               for a, b in zip(ra.log_likelihoods, rb.log_likelihoods))
    same = all(ra.predictions == rb.predictions for ra, rb in zip(results["shared"], results["packed"]))
    print(f"packed / shared examples/s: first {rates['packed', 'first'] / rates['shared', 'first']:.2f}x, "
          f"warm {rates['packed', 'warm'] / rates['shared', 'warm']:.2f}x; "
          f"largest log-likelihood difference {diff:.2e}; same predictions: {same}")
    assert same and diff < 1e-3, "the two paths disagree beyond float32 noise"
    if args.generate:
        generation(model, params, examples, args.generate)
    return 0


def generation(model, params, examples: list[dict], input_length: int, new_tokens: int = 8) -> None:
    """Greedy decoding of the prompts with rows of the whole inputs length (as before) and with
    power-of-two prompt widths (`decoding.prompt_width`): examples/s, compilations, equal outputs."""
    from flan_jax.eval import decoding

    inputs = [e["inputs"].tolist() for e in examples]
    config = decoding.DecodeConfig("greedy", max_decode_length=new_tokens)
    outputs, rates, default = {}, {}, decoding.MIN_PROMPT_WIDTH
    for variant, phase in [("full width", "first"), ("bucketed", "first"), ("full width", "warm"),
                           ("bucketed", "warm")]:
        decoding.MIN_PROMPT_WIDTH = input_length if variant == "full width" else default
        t = time.perf_counter()
        with compilations.counted() as compiles:
            outputs[variant] = decoding.generate(model, params, inputs, config=config, input_length=input_length,
                                                 batch_size=16).tokens
        secs = time.perf_counter() - t
        rates[variant, phase] = len(inputs) / secs
        print(f"generate {variant:10s} {phase:5s} {secs:8.2f} s {len(inputs) / secs:7.2f} examples/s  "
              f"compilations {len(compiles)}", flush=True)
    decoding.MIN_PROMPT_WIDTH = default
    same = sum(a == b for a, b in zip(outputs["bucketed"], outputs["full width"]))
    print(f"bucketed / full width (inputs length {input_length}): first "
          f"{rates['bucketed', 'first'] / rates['full width', 'first']:.2f}x, warm "
          f"{rates['bucketed', 'warm'] / rates['full width', 'warm']:.2f}x; same outputs: {same} of {len(inputs)}")
    # Random weights give near-flat next-token distributions, where float32 noise between the two
    # row widths can flip an argmax; a real difference would change most outputs.
    assert same >= 0.9 * len(inputs), "bucketed decoding changed the outputs"


if __name__ == "__main__":
    sys.exit(main())
