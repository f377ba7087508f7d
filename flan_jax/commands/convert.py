"""`flan-jax convert`: HF transformers checkpoints <-> flan_jax parameter checkpoints.

    flan-jax convert --from-hf HF_DIR --out CKPT [--scan-layers]
    flan-jax convert --from-gguf FILE.gguf --out CKPT [--scan-layers]
    flan-jax convert --to-hf --from CKPT --out HF_DIR
    flan-jax convert --to-hf --from MODEL_DIR [--base PARAMS_DIR] --out HF_DIR
    flan-jax convert --adapters ADAPTER_DIR [--from BASE_CKPT] [--to-hf] --out DIR

`--adapters` reads LoRA adapters saved by training (`model_dir/adapters/<step>/`,
train/lora_training.py), merges them into their base (W0 + (alpha/r) A B; the base is the path
recorded with the adapters unless `--from` names another) and writes the dense model: a flan_jax
checkpoint, or with `--to-hf` a HF directory of the base's family (Llama, Gemma 3, T5).
`--to-hf --from` also takes what training wrote (eval/model_loading.py): a LoRA model_dir (its
newest adapters, merged into their recorded base) or a full fine-tuning model_dir with `--base`,
the params dir it was tuned from (a model_dir stores no model config); the base's HF special
token ids go to config.json and generation_config.json.

The HF family is read from config.json (model_type / architectures): Llama goes through
`models.hf_llama`, Gemma 3 text (gemma3_text, or a text-only gemma3) through `models.hf_gemma`,
T5 through `models.hf_t5` (imported only when needed). Only safetensors
are read. A GGUF checkpoint (`models.gguf_io`: architectures llama and gemma3, every tensor
dequantized to float32) goes through the HF converter of its family; `--from-gguf
gguf:gemma-3-270m` reads the packaged Gemma 3 270M (the optional `.[gemma]` extra). Outputs are
written atomically: on any error nothing is left at --out.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flan_jax.errors import FlanJaxError

LLAMA_ARCHS = ("LlamaForCausalLM",)
T5_ARCHS = ("T5ForConditionalGeneration",)
GEMMA3_TYPES = ("gemma3_text", "gemma3")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from-hf", metavar="HF_DIR", help="HF model directory (config.json + *.safetensors)")
    parser.add_argument("--from-gguf", metavar="FILE", help="GGUF checkpoint (llama, gemma3), or gguf:gemma-3-270m")
    parser.add_argument("--to-hf", action="store_true", help="write a HF directory from --from CKPT")
    parser.add_argument("--from", dest="from_ckpt", metavar="CKPT",
                        help="flan_jax checkpoint (with --to-hf; with --adapters: the base, default the recorded one)")
    parser.add_argument("--adapters", metavar="ADAPTER_DIR",
                        help="LoRA adapters (model_dir/adapters/<step>) to merge into their base")
    parser.add_argument("--base", metavar="PARAMS_DIR",
                        help="with --to-hf --from MODEL_DIR of a full fine-tuning: the params dir it was "
                        "tuned from (its model config and token ids)")
    parser.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    parser.add_argument("--scan-layers", action="store_true", help="store layers stacked (scan_layers=True)")


def hf_family(model_dir: str | Path) -> str:
    """'llama', 'gemma3' or 't5' from config.json; FlanJaxError naming the file otherwise."""
    from flan_jax.models.hf_config import read_hf_config

    config = read_hf_config(model_dir)
    model_type, archs = config.get("model_type"), config.get("architectures") or []
    if model_type == "llama" or any(a in LLAMA_ARCHS for a in archs):
        return "llama"
    if model_type in GEMMA3_TYPES:
        return "gemma3"
    if model_type == "t5" or any(a in T5_ARCHS for a in archs):
        return "t5"
    raise FlanJaxError(
        f"{Path(model_dir) / 'config.json'}: unsupported model_type {model_type!r} / architectures {archs} "
        "(supported: llama, gemma3_text, t5)"
    )


def load_hf(model_dir: str | Path, scan_layers: bool = False) -> tuple[Any, Any]:
    """(config, params) of a HF directory of any supported family."""
    import dataclasses

    family = hf_family(model_dir)
    if family == "llama":
        from flan_jax.models.hf_llama import load_hf_llama

        return load_hf_llama(model_dir, scan_layers=scan_layers)
    if family == "gemma3":
        from flan_jax.models.hf_gemma import load_hf_gemma

        return load_hf_gemma(model_dir, scan_layers=scan_layers)
    from flan_jax.models import hf_t5

    config, params = hf_t5.load_hf_t5(model_dir)
    if scan_layers:
        config = dataclasses.replace(config, scan_layers=True)
        params = hf_t5.stack_layers(params, config)
    return config, params


def save_hf(config: Any, params: Any, out_dir: str | Path, token_ids: dict[str, Any] | None = None) -> None:
    """Writes a HF directory for a flan_jax (config, params), atomically; `token_ids` (an
    imported model's own, see params_io.load_token_ids) default to the family's."""
    from flan_jax.models.params_io import family_of

    family = family_of(config)
    if family == "decoder":
        from flan_jax.models.hf_llama import save_hf_llama

        save_hf_llama(config, params, out_dir, token_ids)
    elif family == "gemma3":
        from flan_jax.models.hf_gemma import save_hf_gemma

        save_hf_gemma(config, params, out_dir)
    else:
        from flan_jax.models.hf_t5 import save_hf_t5

        save_hf_t5(config, params, out_dir, token_ids)


def _check_out(out: str) -> None:
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FlanJaxError(f"{path}: output path exists and is not an empty directory")


def run(args: argparse.Namespace) -> int:
    from flan_jax.models import params_io

    if args.adapters:
        if args.from_hf or args.from_gguf:
            raise FlanJaxError("convert --adapters: the base is a flan_jax checkpoint (--from CKPT), "
                               "not --from-hf/--from-gguf")
    elif sum(map(bool, (args.from_hf, args.from_gguf, args.to_hf))) != 1:
        raise FlanJaxError("convert: give one of --from-hf HF_DIR, --from-gguf FILE, --to-hf --from CKPT "
                           "or --adapters DIR")
    _check_out(args.out)
    if args.adapters:
        from flan_jax.train import lora_training

        config, params, base = lora_training.load_merged(args.adapters, args.from_ckpt, with_base=True)
        if args.to_hf:
            save_hf(config, params, args.out, token_ids=params_io.load_token_ids(base))
        else:
            params_io.save_checkpoint(args.out, config, params, token_ids=params_io.load_token_ids(base))
    elif args.from_hf:
        from flan_jax.models.hf_config import read_token_ids

        config, params = load_hf(args.from_hf, scan_layers=args.scan_layers)
        params_io.save_checkpoint(args.out, config, params, token_ids=read_token_ids(args.from_hf))
    elif args.from_gguf:
        from flan_jax.data.features.gguf_vocab import resolve_gguf_path
        from flan_jax.models.gguf_io import load_gguf

        config, params = load_gguf(resolve_gguf_path(args.from_gguf), scan_layers=args.scan_layers)
        params_io.save_checkpoint(args.out, config, params)
    else:
        if not args.from_ckpt:
            raise FlanJaxError("convert --to-hf: --from CKPT is required")
        from flan_jax.eval.model_loading import load_model  # params dir, trainer or LoRA model_dir

        loaded = load_model(args.from_ckpt, base=args.base)
        config, params = loaded.config, loaded.params
        save_hf(config, params, args.out, token_ids=loaded.token_ids)
    count = sum(v.size for v in params_io.flatten_params(params).values())
    print(f"wrote {args.out} ({type(config).__name__}, {count:,} parameters)")
    return 0
