"""`flan-jax score`: print log p(targets | inputs) under a flan_jax parameter checkpoint.

    flan-jax score --checkpoint CKPT --vocab spm.model --inputs "Is the sky blue?" --targets yes no
    -> one summed log-likelihood per target (just the number when there is one target)

The batch is built for the checkpoint's model format with the training feature converter
(`data.features.convert_examples`): the target gets the vocabulary's EOS id appended (1 for T5
and our vocabulary, 2 for a Llama-style one; `data.vocab.eos_id`), weights are 1 on the
target tokens and 0 on the inputs, so the number is what rank classification compares.
"""
from __future__ import annotations

import argparse
from typing import Any

from flan_jax.errors import FlanJaxError



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="flan_jax parameter checkpoint dir (flan-jax convert)")
    parser.add_argument("--vocab", required=True, help="sentencepiece .model file")
    parser.add_argument("--inputs", required=True, help="input text")
    parser.add_argument("--targets", required=True, nargs="+", help="one or more target texts")
    parser.add_argument("--no-eos", action="store_true", help="do not append EOS to the targets")


def build_score_batch(
    format_name: str, inputs: list[int], targets_list: list[list[int]], bos_id: int = 0
) -> dict[str, Any]:
    """One unpacked row per target, in `format_name`'s fields (lengths fit the longest target);
    `bos_id` starts the decoder formats' rows (`features.model_bos_id`)."""
    from flan_jax.data.features.converters import convert_examples

    for t in targets_list:
        if not t:
            raise FlanJaxError("score: a target encodes to no tokens (use EOS or a non-empty target)")
    lengths = {"inputs": max(1, len(inputs)), "targets": max(len(t) for t in targets_list)}
    examples = [{"inputs": inputs, "targets": t} for t in targets_list]
    return convert_examples(examples, format_name, lengths, bos_id=bos_id)


def target_token_ids(vocab: Any, targets: list[str], eos: bool = True) -> list[list[int]]:
    """Each target's ids, then the vocabulary's EOS id (as training's targets end)."""
    from flan_jax.data.features.vocab import eos_id

    end = [eos_id(vocab)] if eos else []
    return [list(vocab.encode(t)) + end for t in targets]


def score_texts(ckpt: str, vocab_path: str, inputs: str, targets: list[str], eos: bool = True) -> list[float]:
    """Summed target log-likelihoods, one per target text."""
    from flan_jax.data.features.vocab import load_vocabulary
    from flan_jax.eval.scoring import sequence_log_likelihood
    from flan_jax.models import params_io

    vocab = load_vocabulary(vocab_path)
    config, params = params_io.load_checkpoint(ckpt)
    model = params_io.build_model(config)
    input_ids = list(vocab.encode(inputs))
    target_ids = target_token_ids(vocab, targets, eos)
    if max(input_ids + sum(target_ids, [])) >= config.vocab_size:
        raise FlanJaxError(f"{vocab_path}: token ids exceed the model vocabulary ({config.vocab_size}) of {ckpt}")
    from flan_jax.data.features.converters import model_bos_id

    batch = build_score_batch(model.FEATURE_FORMAT, input_ids, target_ids, model_bos_id(config))
    return [float(x) for x in sequence_log_likelihood(model, params, batch)]


def run(args: argparse.Namespace) -> int:
    scores = score_texts(args.checkpoint, args.vocab, args.inputs, args.targets, eos=not args.no_eos)
    if len(scores) == 1:
        print(f"{scores[0]:.6f}")
    else:
        for value, text in zip(scores, args.targets):
            print(f"{value:.6f}\t{text}")
    return 0
