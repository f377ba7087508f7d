"""What `train()` (train.py) sets up before its sections: the loss options and the model.

    loss_options()                 -> {"z_loss": 1e-4, "label_smoothing": 0.0, "normalization": "tokens",
                                       "custom_vjp": False, "head_capacity": 0.25}   (gin: loss_options.*)
    _build_model(T5Config(), None) -> (T5 module, its T5Config, None)
    _build_model(None, "ckpt/")    -> (the module of the checkpoint's config, that config, its params)

`_build_model` raises FlanJaxError (one line naming the gin bindings) with neither a model nor
a pretrained checkpoint.
"""
from __future__ import annotations

from typing import Any

import gin

from flan_jax.errors import FlanJaxError
from flan_jax.train.loss import DEFAULT_HEAD_CAPACITY


@gin.configurable
def loss_options(z_loss: float = 1e-4, label_smoothing: float = 0.0, normalization: str = "tokens",
                 custom_vjp: bool = False,
                 head_capacity: float | None = DEFAULT_HEAD_CAPACITY) -> dict[str, Any]:
    """Keyword arguments for `loss.cross_entropy_loss` (t5x's default z-loss 1e-4) and the
    step's `head_capacity`: the output projection and the loss run at the loss positions only,
    in chunks of this fraction of each device's micro-batch positions (exact whatever the
    fraction; `loss.head_cross_entropy_loss`, docs/training.md); None: full [B, L, V] logits."""
    return {"z_loss": z_loss, "label_smoothing": label_smoothing, "normalization": normalization,
            "custom_vjp": custom_vjp, "head_capacity": head_capacity}


def _build_model(model: Any, pretrained: str | None) -> tuple[Any, Any, Any]:
    """(flax module, its config, pretrained params or None)."""
    from flan_jax.models import params_io

    params = None
    if pretrained:
        config, params = params_io.load_checkpoint(pretrained)
        model = config if model is None else model
    if model is None:
        raise FlanJaxError("train: no model (bind train.model = @T5Config() / @DecoderConfig() / @Gemma3Config(), "
                           "or give train.pretrained)")
    module = model if hasattr(model, "apply") else params_io.build_model(model)
    return module, getattr(module, "config", None), params
