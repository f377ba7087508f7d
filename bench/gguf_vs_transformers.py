"""Gemma 3 270M GGUF read by flan_jax next to transformers' own GGUF loader (a check, ~2 min, ~4 GB).

    .venv/bin/python bench/gguf_vs_transformers.py          # needs the .[gemma] extra

Prints: how many of the HF-named float32 tensors from `gguf_io.load_gguf_hf` differ from the
state dict of `AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)`, the config keys whose
values differ, and the largest logit difference between transformers' model and a
Gemma3ForCausalLM built from OUR config dict and tensors, plus a short greedy continuation.
"""
from __future__ import annotations

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

from flan_jax.formats.gguf_file import packaged_gemma3_270m
from flan_jax.models.gguf_io import load_gguf_hf

# transformers 4 spellings and our extras that Gemma3TextConfig (transformers 5) does not take
NOT_CONFIG_ARGS = ("architectures", "torch_dtype", "rope_scaling", "rope_theta", "rope_local_base_freq",
                   "sliding_window_pattern")


def main() -> None:
    path = packaged_gemma3_270m()
    config, tensors = load_gguf_hf(path)
    ref = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    state = ref.state_dict()
    differ = [k for k, v in tensors.items() if not np.array_equal(v, state[k].numpy())]
    print(f"tensors: {len(tensors)}, differing from transformers: {differ}")
    hf_config = ref.config.to_dict()
    print("config keys differing:", {k: (v, hf_config[k]) for k, v in config.items()
                                     if k in hf_config and hf_config[k] != v})
    ours = Gemma3ForCausalLM(Gemma3TextConfig(**{k: v for k, v in config.items() if k not in NOT_CONFIG_ARGS}))
    ours.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
    ours.tie_weights()
    ours.eval()
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        diff = (ref(ids).logits - ours(ids).logits).abs().max().item()
        out = ours.generate(ids, max_new_tokens=8, do_sample=False)
    print(f"max |logit difference|: {diff}")
    print("greedy continuation:", repr(tok.decode(out[0])))


if __name__ == "__main__":
    main()
