"""train() in a child process (train/child.py): the same losses and parameters as in this
process, and a failure in the child comes back as one FlanJaxError naming it."""
import gin
import jax
import numpy as np
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.models.decoder import DecoderConfig
from flan_jax.models.params_io import flatten_params
from flan_jax.train.child import train_in_child
from flan_jax.train.train import train

DEC_TINY = DecoderConfig(vocab_size=64, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8,
                         mlp_dim=32, num_layers=1)
KW = {"model": DEC_TINY, "mixture": "synthetic", "feature_lengths": {"inputs": 6, "targets": 4},
      "batch_size": 8, "num_steps": 2, "log_every": 100}


@pytest.mark.slow
def test_child_training_equals_training_here(tmp_path):
    gin.clear_config()
    here = train(model_dir=str(tmp_path / "here"), **KW)
    result, params = train_in_child(gin.config_str(), tmp_path / "child" / "params",
                                    model_dir=str(tmp_path / "child"), **KW)
    assert result.state is None and result.step == 2 and result.losses == here.losses
    want = flatten_params(jax.device_get(here.state.params))
    got = flatten_params(params)
    assert sorted(got) == sorted(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-7, err_msg=k)


def test_a_failure_in_the_child_is_one_clear_error(tmp_path):
    with pytest.raises(FlanJaxError, match="no_such_mixture"):
        train_in_child("", tmp_path / "params", model_dir=str(tmp_path / "run"),
                       **{**KW, "mixture": "no_such_mixture"})
