"""The forgetting probe: language-model loss per token on held-back plain text.

Instruction tuning can erode what pretraining taught; the probe measures it on text the tuning
never sees, with the model's own objective (`data.plain_text`): next-token loss for decoder
families, span-corruption target loss for T5 (the corruption is content-seeded, so before and
after tuning score the same inputs and targets). Lower is better; a rise after tuning is
forgetting. Reported in nats per target token (EOS included, as in training).

    probe = forgetting_probe(model, params, documents, vocabulary, chunk_length=128)
    probe == {"loss_per_token": 3.41, "tokens": 5120, "chunks": 40, "objective": "lm"}
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from flan_jax.errors import FlanJaxError


def forgetting_probe(model: Any, params: Any, documents: Sequence[str], vocabulary: Any, *,
                     chunk_length: int = 128, batch_size: int = 16, eos_id: int | None = None
                     ) -> dict[str, Any]:
    """Mean negative log-likelihood per target token of `documents` under `model`.

    Raises FlanJaxError when the documents give no chunk to score.
    """
    from flan_jax.data.features import converters as features  # noqa: PLC0415
    from flan_jax.data.sources import plain_text  # noqa: PLC0415
    from flan_jax.eval.scoring import sequence_log_likelihood  # noqa: PLC0415

    fmt = model.FEATURE_FORMAT
    objective = "span_corruption" if fmt == "enc_dec" else "lm"
    eos = int(vocabulary.eos_id if eos_id is None else eos_id)
    examples = [{"inputs": ex["inputs"], "targets": np.append(ex["targets"], eos).astype(np.int32)}
                for ex in plain_text.examples(documents, vocabulary, objective, chunk_length)]
    if not examples:
        raise FlanJaxError("forgetting probe: the documents give no text to score")
    lengths = {"inputs": max(1, max(e["inputs"].size for e in examples)),
               "targets": max(e["targets"].size for e in examples)}
    total, tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = features.convert_examples(examples[start:start + batch_size], fmt, lengths)
        total -= float(np.sum(np.asarray(sequence_log_likelihood(model, params, batch))))
        tokens += int(np.sum(batch["decoder_loss_weights"]))
    return {"loss_per_token": total / tokens, "tokens": tokens, "chunks": len(examples),
            "objective": objective}
