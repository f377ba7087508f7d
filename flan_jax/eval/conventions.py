"""Scoring conventions for multiple-choice evaluation: what is scored and how the option is chosen.

Two conventions, chosen by name (`CONVENTIONS`), give different numbers for the same model and
examples, so every report says which one it used:

* `flan` -- FLAN / T5 rank classification (today's default): each option is scored as a
  training target would be, the option's tokens followed by EOS, given the rendered prompt
  (the example's `inputs` token ids). No normalisation. Metric `acc` = argmax of the summed
  log-likelihood (with `length_normalize`, of the mean per scored token, EOS included).
* `lm_eval` -- EleutherAI lm-evaluation-harness 0.4 multiple choice (checked against
  lm_eval 0.4.13, `lm_eval/api/task.py` ConfigurableTask.construct_requests / process_results):
  the continuation is `target_delimiter + option` (delimiter " "), no EOS, given the prompt
  text `inputs_pretokenized`. Metrics:
    - `acc`      = argmax of the summed log-likelihood of the continuation;
    - `acc_norm` = argmax of log-likelihood / len(option) in characters (the option alone,
                   without the delimiter: the harness's `completion_len`).
  Tokens are split the harness's way for causal models (`lm_eval/api/model.py`
  `TemplateLM._encode_pair`): trailing whitespace of the context moves to the continuation,
  the continuation's ids are `encode(context + continuation)[len(encode(context)):]`.
  Encoder-decoder models encode the two parts separately, as the harness does for seq2seq.

Either convention can add the prior-corrected `acc_mutual_info` (the harness's metric of that
name): argmax over options of log P(continuation | prompt) - log P(continuation | no prompt).
The "no prompt" score is the harness's empty-context request: the continuation after the
model's BOS alone (decoder formats start every row with it; the harness's `prefix_token_id`),
or after an encoder input of [EOS] for encoder-decoders (T5 has no BOS; the harness then uses
EOS). Under `flan` the continuation is option + EOS, under `lm_eval` " " + option. The
unconditional score depends on the option only, so it is computed once per distinct option.

Worked example (lm_eval, character vocabulary, prompt "Is it? A:", options ["yes", "no"]):

    continuations        " yes", " no"
    log P(cont | prompt) [-2.0, -1.2]      acc      -> 1 ("no": -1.2 > -2.0)
    / len(option)        [-0.667, -0.6]    acc_norm -> 1
    log P(cont | BOS)    [-3.0, -0.9]      acc_mutual_info: [-2.0+3.0, -1.2+0.9] = [1.0, -0.3] -> 0

Ties go to the first option (numpy argmax), as in the harness.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from flan_jax.errors import FlanJaxError

CONVENTIONS = ("flan", "lm_eval")
# lm-eval's default `target_delimiter` (lm_eval/api/task.py TaskConfig): one space.
TARGET_DELIMITER = " "
# The metrics each convention reports (`acc_mutual_info` is added when asked for).
METRICS = {"flan": ("acc",), "lm_eval": ("acc", "acc_norm")}
MUTUAL_INFO = "acc_mutual_info"

Pair = tuple[np.ndarray, np.ndarray]  # (context ids, continuation ids), int32


class ConventionError(FlanJaxError):
    """An unknown convention name or an example the convention cannot score."""


def check_conventions(names: str | Sequence[str]) -> tuple[str, ...]:
    """"flan,lm_eval" or ["flan", "lm_eval"] -> ("flan", "lm_eval"); unknown or empty: error."""
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
    items = [n for n in items if n]
    if not items:
        raise ConventionError(f"no scoring convention given; choose from {', '.join(CONVENTIONS)}")
    for n in items:
        if n not in CONVENTIONS:
            raise ConventionError(f"unknown scoring convention {n!r}; choose from {', '.join(CONVENTIONS)}")
    return tuple(dict.fromkeys(items))


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _ids(values: Sequence[int]) -> np.ndarray:
    return np.asarray(list(values), np.int32).reshape(-1)


def split_context_continuation(context: str, continuation: str, encode: Callable[[str], Sequence[int]],
                               format_name: str) -> Pair:
    """The harness's (context ids, continuation ids) of one request.

    Causal formats ("decoder", "prefix_lm"):
        context "Q: 2+2? A: ", continuation "4"  -> text "Q: 2+2? A:" + " 4" (the trailing space
        moves), context ids = encode("Q: 2+2? A:"), continuation ids = encode("Q: 2+2? A: 4")
        [len(context ids):]
    "enc_dec": encode(context), encode(continuation), separately (no space moved).
    """
    if format_name == "enc_dec":
        return _ids(encode(context)), _ids(encode(continuation))
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    context_ids = _ids(encode(context))
    whole = _ids(encode(context + continuation))
    return context_ids, whole[context_ids.size:]


def option_pair(example: Mapping[str, Any], option: str, vocabulary: Any, convention: str,
                format_name: str, eos: int, delimiter: str = TARGET_DELIMITER, where: str = "example") -> Pair:
    """(context ids, continuation ids) that `convention` scores for one option of one example.

    flan:    (example["inputs"], encode(option) + [eos])
    lm_eval: split_context_continuation(example["inputs_pretokenized"], delimiter + option)
    """
    if not option:
        raise ConventionError(f"{where}: an empty answer option cannot be scored")
    if convention == "flan":
        return _ids(example["inputs"]), _ids(list(vocabulary.encode(option)) + [eos])
    if convention == "lm_eval":
        if "inputs_pretokenized" not in example:
            raise ConventionError(f"{where}: the lm_eval convention needs the prompt text "
                                  "('inputs_pretokenized'); the example has token ids only")
        context = _text(example["inputs_pretokenized"])
        return split_context_continuation(context, delimiter + option, vocabulary.encode, format_name)
    raise ConventionError(f"unknown scoring convention {convention!r}; choose from {', '.join(CONVENTIONS)}")


def unconditional_pair(option: str, vocabulary: Any, convention: str, format_name: str, eos: int,
                       delimiter: str = TARGET_DELIMITER) -> Pair:
    """The option's continuation with no prompt (the harness's empty-context request).

    Decoder formats: context [] (the row's BOS is the only thing the model reads first);
    enc_dec: context [eos]. Continuation: flan encode(option) + [eos]; lm_eval
    encode(delimiter + option).
    """
    context = _ids([eos] if format_name == "enc_dec" else [])
    if convention == "flan":
        return context, _ids(list(vocabulary.encode(option)) + [eos])
    return context, _ids(vocabulary.encode(delimiter + option))


def choose(convention: str, log_likelihoods: np.ndarray, options: Sequence[str],
           num_tokens: np.ndarray | None = None, unconditional: np.ndarray | None = None,
           length_normalize: bool = False) -> dict[str, int]:
    """{metric: chosen option index} for one example (see the module docstring).

    log_likelihoods, num_tokens, unconditional: [num_options] float arrays (summed log p in
    nats, scored tokens, log p without the prompt). `length_normalize` (flan only): `acc` over
    log-likelihood / num_tokens.
    """
    ll = np.asarray(log_likelihoods, np.float64)
    out: dict[str, int] = {}
    if convention == "flan":
        scores = ll / np.maximum(np.asarray(num_tokens, np.float64), 1.0) if length_normalize else ll
        out["acc"] = int(np.argmax(scores))
    elif convention == "lm_eval":
        out["acc"] = int(np.argmax(ll))
        out["acc_norm"] = int(np.argmax(ll / np.array([float(len(o)) for o in options])))
    else:
        raise ConventionError(f"unknown scoring convention {convention!r}")
    if unconditional is not None:
        out[MUTUAL_INFO] = int(np.argmax(ll - np.asarray(unconditional, np.float64)))
    return out
