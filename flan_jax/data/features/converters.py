"""Tokenized examples -> model batch fields (the batch contract of docs/architecture.md).

Three formats, with the t5x/seqio field names the models read:

* `enc_dec`: inputs go to the encoder, targets to the decoder.
* `decoder`: one causal sequence `inputs + targets`; loss only on the targets.
* `prefix_lm`: the `decoder` fields plus `decoder_causal_attention`, 1 on the prefix positions that
  attend bidirectionally.

Worked example (`prefix_lm`, unpacked, lengths {"inputs": 4, "targets": 4}, so rows of 8):

    example = {"inputs": [7, 8, 5], "targets": [3, 9, 1]}            # 1 = EOS
    decoder_target_tokens    = [7, 8, 5, 3, 9, 1, 0, 0]
    decoder_input_tokens     = [0, 7, 8, 5, 3, 9, 1, 0]               # shifted right, BOS = 0
    decoder_loss_weights     = [0, 0, 0, 1, 1, 1, 0, 0]               # targets incl. EOS
    decoder_causal_attention = [1, 1, 1, 1, 0, 0, 0, 0]               # len(inputs) + 1 ones

`decoder_causal_attention` is aligned with `decoder_input_tokens`: the prefix the model *reads* is
BOS plus the inputs, hence len(inputs) + 1 ones (the position reading the last input token and
predicting the first target is in the prefix). This is seqio's PrefixLMFeatureConverter convention;
the `decoder` format is the same minus that field (seqio's DecoderFeatureConverter emits it too; we
leave it out so a causal model never sees it).

BOS: the decoder formats start every segment of `decoder_input_tokens` with `bos_id`, 0 by default
(the pad id, as T5/seqio do and as our own models are trained). A pretrained model that expects its
tokenizer's BOS says so through its config (`model_bos_id`: Gemma's `<bos>` is 2), and every batch
builder (pipeline.batches, convert_examples, rank classification, decoding prompts) takes it:

    example = {"inputs": [7, 8, 5], "targets": [3, 9, 1]}, "decoder", unpacked, bos_id=2
    decoder_input_tokens     = [2, 7, 8, 5, 3, 9, 1, 0]               # only position 0 differs

`enc_dec` ignores it: the T5 decoder always starts from 0 (its decoder_start_token_id).
Exactly one BOS starts a row: an example whose decoder tokens already start with a non-zero
`bos_id` (a tokenizer that adds BOS, a chat template's own `<bos>`) is refused with one
FlanJaxError naming the example, instead of training on `[2, 2, ...]`.

Packed rows add `*_segment_ids` (1, 2, ... per example, 0 on padding) and `*_positions` (restarting
at 0 per example); `decoder_input_tokens` restarts with the BOS at each segment start. Unpacked rows
omit segment ids and positions, as seqio does (models then mask from decoder_target_tokens != 0),
and, like seqio, shift the whole row: the EOS also appears in `decoder_input_tokens` at the first
padding position (target 0, weight 0 there, so it is never trained on).

Examples may carry `loss_weights` aligned with `targets` (chat examples: 1 on assistant turns, 0 on
the user turns that follow the first assistant turn); plain examples get weight 1 on every target.
All arrays are int32, loss weights included (as seqio emits them).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from flan_jax.errors import FlanJaxError

FORMATS = ("enc_dec", "decoder", "prefix_lm")
OVERLONG_POLICIES = ("truncate", "drop")

_DECODER_FIELDS = ("decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights")
_PACKED_DECODER = ("decoder_segment_ids", "decoder_positions")
_PACKED_ENCODER = ("encoder_segment_ids", "encoder_positions")


def batch_fields(format_name: str, packed: bool) -> tuple[str, ...]:
    """The field names a batch of this format carries (the architecture table)."""
    fmt = check_format(format_name)
    fields = _DECODER_FIELDS + (_PACKED_DECODER if packed else ())
    if fmt == "enc_dec":
        fields = ("encoder_input_tokens",) + (_PACKED_ENCODER if packed else ()) + fields
    if fmt == "prefix_lm":
        fields = fields + ("decoder_causal_attention",)
    return fields


def model_bos_id(model: Any) -> int:
    """The BOS id the decoder formats put at each segment start for `model` (a flax module or a
    config): its `bos_id`, else its HF-named `bos_token_id` (a Gemma config: 2), else 0."""
    config = getattr(model, "config", model)
    bos = getattr(config, "bos_id", None)
    if bos is None:
        bos = getattr(config, "bos_token_id", None)
    return 0 if bos is None else int(bos)


def check_format(format_name: str) -> str:
    if format_name not in FORMATS:
        raise FlanJaxError(f"unknown batch format {format_name!r}; expected one of {FORMATS}")
    return format_name


def check_lengths(lengths: Mapping[str, int]) -> dict[str, int]:
    """Validate task feature lengths {"inputs": Li, "targets": Lt} (t5x `task_feature_lengths`).

    For `enc_dec` they are the encoder and decoder lengths; for the decoder formats the row length
    is Li + Lt and each part is trimmed to its own length first (as seqio does).
    """
    out = {}
    for key in ("inputs", "targets"):
        if key not in lengths:
            raise FlanJaxError(f"sequence lengths need {key!r}: got {dict(lengths)}")
        value = lengths[key]
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
            raise FlanJaxError(f"sequence length {key!r} must be a positive int, got {value!r}")
        out[key] = int(value)
    extra = set(lengths) - {"inputs", "targets"}
    if extra:
        raise FlanJaxError(f"unknown sequence length keys {sorted(extra)}; use 'inputs', 'targets'")
    return out


def row_capacity(format_name: str, lengths: Mapping[str, int]) -> tuple[int, int]:
    """(encoder length, decoder length) of one batch row; encoder length 0 for decoder formats."""
    lengths = check_lengths(lengths)
    if check_format(format_name) == "enc_dec":
        return lengths["inputs"], lengths["targets"]
    return 0, lengths["inputs"] + lengths["targets"]


class Segment(NamedTuple):
    """One example laid out for a row, before padding (what the packer moves around).

    `encoder` is empty for the decoder formats; `prefix` is the number of leading decoder
    positions with `decoder_causal_attention` = 1 (0 unless prefix_lm).
    """

    encoder: np.ndarray
    decoder: np.ndarray
    weights: np.ndarray
    prefix: int


_EMPTY = np.zeros(0, np.int32)


def _token_array(example: Mapping[str, Any], key: str, where: str) -> np.ndarray:
    value = example.get(key)
    if value is None:
        raise FlanJaxError(f"{where}: example has no {key!r} field (keys: {sorted(example)})")
    arr = np.asarray(value)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise FlanJaxError(f"{where}: {key!r} must be a 1-D int token array, got {arr.dtype} {arr.shape}")
    if arr.size and arr.min() <= 0:
        raise FlanJaxError(f"{where}: {key!r} contains id {int(arr.min())}; 0 is padding, ids must be > 0")
    return arr.astype(np.int32, copy=False)


def example_to_segment(
    example: Mapping[str, Any],
    format_name: str,
    lengths: Mapping[str, int],
    overlong: str = "truncate",
    where: str = "example",
    eos_id: int | None = None,
    bos_id: int = 0,
) -> tuple[Segment | None, str]:
    """Lay out one tokenized example; returns (segment or None, outcome).

    outcome is "ok", "truncated" (cut to the lengths, segment kept), "dropped" (overlong with
    policy "drop") or "zero_loss" (no token left with loss weight 1; never trained on).
    Truncation keeps the beginning of inputs and targets, as seqio does. With `eos_id` (a
    feature seqio gives `add_eos=True`), overlong targets ending in it keep it: they are cut to
    Lt - 1 tokens and the EOS follows, as seqio's `append_eos_after_trim` does (its weight is the
    original last token's):

        {"inputs": [7], "targets": [415, 928, 323, 1]}, "enc_dec", {"inputs": 4, "targets": 3},
        eos_id=1 -> targets [415, 928, 1] (without eos_id: [415, 928, 323]), "truncated"

        {"inputs": [7, 8, 5], "targets": [3, 9, 1]}, "decoder", {"inputs": 2, "targets": 8}
        -> Segment(encoder=[], decoder=[7, 8, 3, 9, 1], weights=[0, 0, 1, 1, 1], prefix=0),
           "truncated"

    `bos_id` (> 0, decoder formats): the BOS the row will start with; an example whose first
    decoder token is already that id raises FlanJaxError (a row would start with two BOS).
    """
    if overlong not in OVERLONG_POLICIES:
        raise FlanJaxError(f"unknown overlong policy {overlong!r}; expected one of {OVERLONG_POLICIES}")
    if format_name not in FORMATS:
        check_format(format_name)
    inputs = _token_array(example, "inputs", where) if "inputs" in example else _EMPTY
    targets = _token_array(example, "targets", where)
    weights = example.get("loss_weights")
    if weights is None:
        if targets.size == 0:
            raise FlanJaxError(f"{where}: empty 'targets' (nothing to train on; targets end with EOS=1)")
        weights = np.ones(targets.size, np.int32)
    else:
        weights = np.asarray(weights, np.int32)
        if weights.shape != targets.shape:
            raise FlanJaxError(
                f"{where}: 'loss_weights' has shape {weights.shape}, 'targets' has {targets.shape}")
    if bos_id and format_name != "enc_dec":
        first = inputs[:1] if inputs.size else targets[:1]
        if first.size and int(first[0]) == int(bos_id):
            raise FlanJaxError(
                f"{where}: starts with the BOS id {bos_id}, which the feature converter writes itself "
                "(the row would start with two); tokenize without BOS (a chat template's BOS is "
                "left to the converter)")
    li, lt = lengths["inputs"], lengths["targets"]
    outcome = "ok"
    if inputs.size > li or targets.size > lt:
        if overlong == "drop":
            return None, "dropped"
        if eos_id is not None and targets.size > lt and targets[-1] == eos_id:
            targets = np.concatenate([targets[:lt - 1], targets[-1:]])
            weights = np.concatenate([weights[:lt - 1], weights[-1:]])
        inputs, targets, weights = inputs[:li], targets[:lt], weights[:lt]
        outcome = "truncated"
    if not weights.any():
        return None, "zero_loss"
    if format_name == "enc_dec":
        return Segment(inputs, targets, weights, 0), outcome
    decoder = np.concatenate([inputs, targets])
    full_weights = np.concatenate([np.zeros(inputs.size, np.int32), weights])
    prefix = min(inputs.size + 1, decoder.size) if format_name == "prefix_lm" else 0
    return Segment(_EMPTY, decoder, full_weights, prefix), outcome


def assemble_rows(
    rows: Sequence[Sequence[Segment]],
    format_name: str,
    lengths: Mapping[str, int],
    packed: bool,
    bos_id: int = 0,
) -> dict[str, np.ndarray]:
    """Pad (and, if packed, concatenate) the segments of each row into one batch dict.

    Packed, decoder format, row of 8 from two segments [5, 1] and [6, 7, 1]:

        decoder_target_tokens = [5, 1, 6, 7, 1, 0, 0, 0]
        decoder_input_tokens  = [0, 5, 0, 6, 7, 0, 0, 0]     # bos_id=2: [2, 5, 2, 6, 7, 0, 0, 0]
        decoder_segment_ids   = [1, 1, 2, 2, 2, 0, 0, 0]
        decoder_positions     = [0, 1, 0, 1, 2, 0, 0, 0]

    `bos_id` starts each segment of the decoder formats (`enc_dec` always starts from 0).
    """
    bos = 0 if format_name == "enc_dec" else int(bos_id)
    enc_len, dec_len = row_capacity(format_name, lengths)
    n = len(rows)
    dec = np.zeros((n, dec_len), np.int32)
    dec_in = np.zeros((n, dec_len), np.int32)
    wts = np.zeros((n, dec_len), np.int32)
    dec_seg = np.zeros((n, dec_len), np.int32)
    dec_pos = np.zeros((n, dec_len), np.int32)
    causal = np.zeros((n, dec_len), np.int32)
    enc = np.zeros((n, enc_len), np.int32)
    enc_seg = np.zeros((n, enc_len), np.int32)
    enc_pos = np.zeros((n, enc_len), np.int32)
    for r, segments in enumerate(rows):
        if not packed and len(segments) != 1:
            raise ValueError("an unpacked row holds exactly one segment (an empty one for padding)")
        d_off = e_off = 0
        for s, seg in enumerate(segments, start=1):
            m = seg.decoder.size
            if d_off + m > dec_len or e_off + seg.encoder.size > enc_len:
                raise ValueError(f"row {r} overflows its capacity ({enc_len}, {dec_len})")
            sl = slice(d_off, d_off + m)
            dec[r, sl] = seg.decoder
            if m:
                dec_in[r, d_off] = bos
            dec_in[r, d_off + 1:d_off + m] = seg.decoder[:-1]
            if not packed and 0 < m < dec_len:
                # Unpacked rows are shifted as a whole (seqio), so the last token (EOS) also
                # lands on the first padding position; its loss weight and target are 0.
                dec_in[r, m] = seg.decoder[-1]
            wts[r, sl] = seg.weights
            dec_seg[r, sl] = s
            dec_pos[r, sl] = np.arange(m)
            causal[r, d_off:d_off + seg.prefix] = 1
            d_off += m
            k = seg.encoder.size
            if k:
                enc[r, e_off:e_off + k] = seg.encoder
                enc_seg[r, e_off:e_off + k] = s
                enc_pos[r, e_off:e_off + k] = np.arange(k)
                e_off += k
    out = {"decoder_input_tokens": dec_in, "decoder_target_tokens": dec, "decoder_loss_weights": wts}
    if packed:
        out.update(decoder_segment_ids=dec_seg, decoder_positions=dec_pos)
    if format_name == "enc_dec":
        out["encoder_input_tokens"] = enc
        if packed:
            out.update(encoder_segment_ids=enc_seg, encoder_positions=enc_pos)
    if format_name == "prefix_lm":
        out["decoder_causal_attention"] = causal
    return out


def convert_examples(
    examples: Iterable[Mapping[str, Any]],
    format_name: str,
    lengths: Mapping[str, int],
    overlong: str = "truncate",
    bos_id: int = 0,
) -> dict[str, np.ndarray]:
    """Unpacked conversion, one example per row: a small, eager entry point (tests, notebooks).

    Examples dropped by the overlong policy or with zero loss are left out; use
    `flan_jax.data.features.pipeline` to get their counts. `bos_id`: see `assemble_rows`.
    """
    check_format(format_name)
    lengths = check_lengths(lengths)
    rows = []
    for i, ex in enumerate(examples):
        seg, _ = example_to_segment(ex, format_name, lengths, overlong, where=f"example {i}",
                                    bos_id=bos_id)
        if seg is not None:
            rows.append([seg])
    return assemble_rows(rows, format_name, lengths, packed=False, bos_id=bos_id)


def seqio_convert(
    examples: Sequence[Mapping[str, Any]],
    format_name: str,
    lengths: Mapping[str, int],
    pack: bool,
) -> dict[str, np.ndarray]:
    """The same conversion done by seqio's feature converters (the independent reference).

    Runs seqio.EncDecFeatureConverter / DecoderFeatureConverter / PrefixLMFeatureConverter on a
    tf.data pipeline and stacks the rows; for "decoder" the causal-attention field is removed.
    Each feature is first cut to its length, as seqio.Task.get_dataset does for a registered task
    (the converters themselves reject over-long features).
    Imports TensorFlow, so it is for tests and benchmarks, not the training input path.
    """
    import seqio  # noqa: PLC0415  (slow import, only for the reference)
    import tensorflow as tf  # noqa: PLC0415

    check_format(format_name)
    lengths = check_lengths(lengths)
    converter = {
        "enc_dec": seqio.EncDecFeatureConverter,
        "decoder": seqio.DecoderFeatureConverter,
        "prefix_lm": seqio.PrefixLMFeatureConverter,
    }[format_name](pack=pack)

    def gen():
        for ex in examples:
            yield {k: np.asarray(ex.get(k, []), np.int32)[:lengths[k]] for k in ("inputs", "targets")}

    spec = {k: tf.TensorSpec([None], tf.int32) for k in ("inputs", "targets")}
    ds = tf.data.Dataset.from_generator(gen, output_signature=spec)
    rows = list(converter(ds, dict(lengths)).as_numpy_iterator())
    if not rows:
        return {}
    out = {k: np.stack([r[k] for r in rows]).astype(np.int32) for k in rows[0]}
    if format_name == "decoder":
        out.pop("decoder_causal_attention", None)
    return out
