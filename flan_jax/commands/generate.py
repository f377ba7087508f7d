"""`flan-jax generate`: try a checkpoint -- print what it generates for prompts.

    flan-jax generate --checkpoint CKPT --prompt "Is ice cold? OPTIONS: - yes - no"
    flan-jax generate --checkpoint runs/main-X/train --base BASE --vocabulary gguf:gemma-3-270m
    flan-jax generate --checkpoint CKPT --template flan_nl.nl_nli_people:eval_t0 \\
        --prompt '{"premise": "A cat sat.", "hypothesis": "An animal sat."}'
    flan-jax generate --checkpoint CKPT --prompts prompts.jsonl --out outputs.jsonl
    flan-jax generate --checkpoint CKPT --decode sample --temperature 0.7 --top_p 0.9 --seed 1

CKPT is anything `eval/model_loading.py` loads: a params dir (`flan-jax convert`), LoRA adapters
or a LoRA trainer model_dir (merged into their recorded base), or a full fine-tuning trainer
model_dir with `--base` (the params dir it was tuned from: its config). Prompts come from
`--prompt` (repeatable), `--prompts FILE.jsonl` (one JSON value per line: a string, {"prompt":
...}, or with --template the dataset's fields; written back as JSONL with "output", "score",
"finished"), or stdin: one prompt per line, interactively when stdin is a terminal (an empty
line or Ctrl-D ends). Bad input (a missing checkpoint, a line that is not JSON or lacks a
field) is one error line, exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from flan_jax.errors import FlanJaxError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True,
                        help="params dir, LoRA adapters / LoRA model_dir, or trainer model_dir (with --base)")
    parser.add_argument("--base", help="params dir a full fine-tuning model_dir was tuned from "
                        "(its model config), or another base for LoRA adapters")
    parser.add_argument("--vocabulary", "--vocab", dest="vocabulary",
                        help="sentencepiece .model, GGUF file or gguf:gemma-3-270m (default: the tasks' "
                        "vocabulary: $FLAN_JAX_VOCAB or the flan-mini one)")
    parser.add_argument("--template", help="render prompts (JSON objects of fields) with this task's "
                        "template, e.g. flan_nl.nl_nli_people:eval_t0 (zero-shot or eval variants)")
    parser.add_argument("--prompt", action="append", default=[], help="a prompt (repeatable)")
    parser.add_argument("--prompts", metavar="FILE.jsonl", help="prompts, one JSON value per line")
    parser.add_argument("--out", help="with --prompts: write the JSONL here (default stdout)")
    parser.add_argument("--decode", choices=("greedy", "sample", "beam"), default="greedy")
    parser.add_argument("--max_decode_length", type=int, default=64, help="tokens generated at most")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top_k", type=int, default=0, help="sampling: keep the k most likely (0: all)")
    parser.add_argument("--top_p", type=float, default=1.0, help="sampling: nucleus mass (1: all)")
    parser.add_argument("--beam_size", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=0.6, help="beam length penalty exponent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input_length", type=int, default=512, help="prompt tokens kept at most")
    parser.add_argument("--batch_size", type=int, default=8)


def _parse_prompt(text: str, template: str | None) -> Any:
    """--prompt / a stdin line: raw text, or with --template a JSON object of fields."""
    if template is None:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise FlanJaxError(f"prompt {text[:40]!r}: with --template a prompt is a JSON object of the "
                           f"dataset's fields ({e.msg})") from None


def run(args: argparse.Namespace) -> int:
    from flan_jax.eval import decoding, model_loading  # noqa: PLC0415
    from flan_jax.eval import generate as gen  # noqa: PLC0415

    if args.out and not args.prompts:
        raise FlanJaxError("generate: --out writes the outputs of --prompts FILE.jsonl")
    config = decoding.DecodeConfig(args.decode, max_decode_length=args.max_decode_length,
                                   beam_size=args.beam_size, alpha=args.alpha, temperature=args.temperature,
                                   top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    renderer = gen.prompt_renderer(args.template) if args.template else None
    items: list[Any] = [_parse_prompt(p, args.template) for p in args.prompt]
    if args.prompts:
        items += gen.read_prompts_jsonl(args.prompts)
    piped = not items and not args.prompts and not sys.stdin.isatty()
    if piped:  # one prompt per line, generated in batches
        items = [_parse_prompt(line, args.template) for line in sys.stdin.read().splitlines() if line.strip()]
    where = f"{args.prompts}:" if args.prompts else "stdin line " if piped else "prompt "
    # every prompt is rendered before the model loads: a bad line costs no loading time
    texts = [gen.render_prompt(it, renderer, f"{where}{i + 1}") for i, it in enumerate(items)]
    loaded = model_loading.load_model(args.checkpoint, base=args.base)
    vocabulary = model_loading.load_vocabulary(args.vocabulary)

    def generate(prompts: list[str]) -> list[Any]:
        return gen.generate_texts(loaded.module, loaded.params, vocabulary, prompts, config,
                                  input_length=args.input_length, batch_size=args.batch_size)

    if items or piped:
        results = generate(texts)
        if args.prompts:
            lines = [json.dumps(r, ensure_ascii=False) for r in gen.output_records(items, results)]
            if args.out:
                with open(args.out, "w", encoding="utf-8") as f:
                    f.write("".join(line + "\n" for line in lines))
                print(f"wrote {len(lines)} outputs to {args.out}")
            else:
                print("\n".join(lines))
        else:
            for r in results:
                print(r.text)
        return 0
    return _from_stdin(args, renderer, generate)


def _from_stdin(args: argparse.Namespace, renderer: Any, generate: Any) -> int:
    """Interactive: one prompt per terminal line, its answer printed below it."""
    from flan_jax.eval import generate as gen  # noqa: PLC0415

    print(f"flan-jax generate: {args.checkpoint} ({args.decode}); one prompt per line, "
          "an empty line or Ctrl-D ends", file=sys.stderr)
    number = 0
    while True:
        print("> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line.strip():
            return 0
        number += 1
        try:
            text = gen.render_prompt(_parse_prompt(line.rstrip("\n"), args.template), renderer,
                                     f"stdin line {number}")
        except FlanJaxError as e:  # a typo costs one line, not the loaded model
            print(f"error: {e}", file=sys.stderr)
            continue
        print(generate([text])[0].text, flush=True)
