"""Packing efficiency and pipeline throughput: our best-fit packer next to seqio's greedy packer.

    .venv/bin/python bench/packing.py [--examples 3000] [--flan-mini-per-task 40] [--seed 0]

Prints figures (not a pass/fail test). Efficiency = non-pad tokens / all positions of the packed
rows, per side (encoder, decoder). For enc_dec the two sides share a row, so only the side that
fills up first (the limiting side) can approach 100%; we print both. "rows" compares how many rows
(i.e. how much model compute) each packer needs for the same examples.

Length mixes:
* flan-like: long-tailed inputs (log-normal, median 180 tokens, clipped to [8, 4000]) and short
  targets (log-normal, median 6, clipped to [2, 800]), the shape of the FLAN 2021 mixture.
* flan-mini: the real flan-mini tasks (all training variants: zs/fs, opt/noopt; rendered and tokenized with the
  default vocabulary) when they can be registered; otherwise a synthetic stand-in (inputs 15-70
  tokens, a third few-shot at 3-5x, targets 2-12).
Formats: enc_dec 1024/256 and decoder 2048 (inputs 1792 + targets 256).
Throughput: raw token examples -> packed numpy batches through `pipeline.batches` (best fit), and
seqio's converter (tf.data, greedy) on the same examples, TensorFlow already imported and warm.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from flan_jax.data.features import converters as features, pipeline  # noqa: E402

CONFIGS = [("enc_dec", {"inputs": 1024, "targets": 256}), ("decoder", {"inputs": 1792, "targets": 256})]


def _examples_from_lengths(li, lt, rng):
    return [{"inputs": rng.integers(3, 1000, a).astype(np.int32),
             "targets": np.r_[rng.integers(3, 1000, b - 1), 1].astype(np.int32)} for a, b in zip(li, lt)]


def flan_like(n, rng):
    li = np.clip(rng.lognormal(np.log(180), 1.1, n), 8, 4000).astype(int)
    lt = np.clip(rng.lognormal(np.log(6), 1.3, n), 2, 800).astype(int)
    return _examples_from_lengths(li, lt, rng)


def flan_mini_synthetic(n, rng):
    li = rng.integers(15, 71, n) * np.where(rng.random(n) < 1 / 3, rng.integers(3, 6, n), 1)
    lt = rng.integers(2, 13, n)
    return _examples_from_lengths(li, lt, rng)


def flan_mini_real(per_task):
    """Tokenized examples of the real flan-mini tasks, or None if they cannot be built here."""
    try:
        import seqio


        from flan_jax.data.tasks import catalogue

        names = [t for t in catalogue.register_flan_mini_tasks() if not t.endswith(":eval")]
        out = []
        for name in names:
            ds = seqio.get_mixture_or_task(name).get_dataset(
                sequence_length=None, split="train", shuffle=False, num_epochs=1)
            for ex in ds.take(per_task).as_numpy_iterator():
                out.append({"inputs": ex["inputs"], "targets": ex["targets"]})
        return out, len(names)
    except Exception as e:  # noqa: BLE001  (report and fall back: the bench must still print)
        print(f"# flan-mini tasks unavailable ({type(e).__name__}: {e}); using the synthetic mix")
        return None


def _fill(batch, key):
    a = batch[key]
    return float((a != 0).sum() / a.size)


def _row_fill(batch):
    """Mean over rows of the fuller side's fill (the limiting side of each row)."""
    fill = (batch["decoder_target_tokens"] != 0).mean(axis=1)
    if "encoder_input_tokens" in batch:
        fill = np.maximum(fill, (batch["encoder_input_tokens"] != 0).mean(axis=1))
    return float(fill.mean())


def efficiency(examples, fmt, lengths):
    it = pipeline.batches(examples, fmt, lengths, 1)
    ours = list(it)
    seqio_rows = features.seqio_convert(examples, fmt, lengths, pack=True)
    s = it.stats.as_dict()
    ours_enc = s.get("encoder_non_pad_fraction", 0.0)
    ours_dec = s["decoder_non_pad_fraction"]
    ref_enc = _fill(seqio_rows, "encoder_input_tokens") if fmt == "enc_dec" else 0.0
    ref_dec = _fill(seqio_rows, "decoder_target_tokens")
    return (ours_enc, ours_dec, s["row_fill"], len(ours),
            ref_enc, ref_dec, _row_fill(seqio_rows), len(seqio_rows["decoder_target_tokens"]))


def throughput(examples, fmt, lengths, repeat=2):
    tokens = sum(len(e["inputs"]) + len(e["targets"]) for e in examples)
    best = {}
    for name, run in [("ours", lambda: list(pipeline.batches(examples, fmt, lengths, 8))),
                      ("seqio", lambda: features.seqio_convert(examples, fmt, lengths, pack=True))]:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            run()
            times.append(time.perf_counter() - t)
        best[name] = min(times)
    return {k: (len(examples) / v, tokens / v) for k, v in best.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3000, help="examples of the flan-like mix")
    parser.add_argument("--flan-mini-per-task", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    mixes = {"flan-like": flan_like(args.examples, rng)}
    real = flan_mini_real(args.flan_mini_per_task)
    if real is not None:
        mixes[f"flan-mini ({real[1]} tasks)"] = real[0]
    else:
        mixes["flan-mini (synthetic)"] = flan_mini_synthetic(args.examples, rng)
    features.seqio_convert(mixes["flan-like"][:8], "decoder", {"inputs": 8, "targets": 8}, pack=True)  # warm TF

    print(f"# packing efficiency (non-pad / all positions); python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores")
    print(f"{'mix':26} {'format':18} {'n':>5} | {'ours enc':>8} {'ours dec':>8} {'row fill':>8} {'rows':>5} | "
          f"{'seqio enc':>9} {'seqio dec':>9} {'row fill':>8} {'rows':>5} | row fill ours/seqio")
    for mix, examples in mixes.items():
        for fmt, lengths in CONFIGS:
            oe, od, of, orows, se, sd, sf, srows = efficiency(examples, fmt, lengths)
            shape = f"{fmt} {lengths['inputs']}/{lengths['targets']}" if fmt == "enc_dec" else \
                f"{fmt} {lengths['inputs'] + lengths['targets']}"
            print(f"{mix:26} {shape:18} {len(examples):5d} | {oe:8.2%} {od:8.2%} {of:8.2%} {orows:5d} | "
                  f"{se:9.2%} {sd:9.2%} {sf:8.2%} {srows:5d} | {of / sf:.3f}")

    print("\n# throughput, raw token examples -> packed batches (best of 2)")
    print(f"{'mix':26} {'format':10} | {'ours ex/s':>10} {'ours tok/s':>11} | "
          f"{'seqio ex/s':>10} {'seqio tok/s':>11} | ratio")
    for mix, examples in mixes.items():
        for fmt, lengths in CONFIGS:
            r = throughput(examples, fmt, lengths)
            (oe, ot), (se, st) = r["ours"], r["seqio"]
            print(f"{mix:26} {fmt:10} | {oe:10.0f} {ot:11.0f} | {se:10.0f} {st:11.0f} | {ot / st:.1f}x")


if __name__ == "__main__":
    main()
