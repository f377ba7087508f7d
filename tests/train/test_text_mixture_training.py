"""A mixture with a plain-text component trains (tiny decoder with `lm`, tiny T5 with span
corruption); its examples reach the stream at its share; the wrong objective is refused."""
import os

import gin
import numpy as np
import pytest

from flan_jax.data.mixing import mixtures
from flan_jax.errors import FlanJaxError
from flan_jax.models.decoder import DecoderConfig
from flan_jax.models.t5 import T5Config
from flan_jax.train.optim import adamw
from flan_jax.train.train import train

MINI = "flan_mini.mini_add:zs_noopt"
DEC = DecoderConfig(vocab_size=1024, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=32,
                    num_layers=1)
T5_TINY = T5Config(vocab_size=1152, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32,
                   num_encoder_layers=1, num_decoder_layers=1)
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi".split()


def _mixture_dir(tmp_path, objective):
    tmp_path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    docs = "\n\n".join(" ".join(rng.choice(WORDS, 40)) for _ in range(30))
    (tmp_path / "docs.txt").write_text(docs + "\n")
    (tmp_path / "text.toml").write_text(f"""
[text.greek]
files = ["docs.txt"]
objective = "{objective}"
chunk_length = 24

[mixture.mini_with_text]
include = [{{ task = "{MINI}" }}, {{ text = "greek", share = 0.5 }}]
""")
    return tmp_path


@pytest.fixture
def mixtures_path(monkeypatch):
    def use(folder):
        monkeypatch.setenv(mixtures.MIXTURES_PATH_ENV, str(folder))
    return use


@pytest.fixture
def extra_ids():
    import seqio

    import flan_jax.data.features.vocab  # noqa: F401  (declares vocabulary_file)

    def forget():  # tasks keep the vocabulary they were registered with (this process only)
        for name in (MINI, "text.greek:span_corruption"):
            if name in seqio.TaskRegistry.names():
                seqio.TaskRegistry.remove(name)

    forget()
    gin.bind_parameter("vocabulary_file.extra_ids", 100)  # T5's sentinels
    yield
    gin.clear_config()
    forget()


def _sampled(name, n=300):
    import seqio

    ds = seqio.get_mixture_or_task(name).get_dataset(None, split="train", shuffle=True, seed=1,
                                                     use_cached=False)
    return list(ds.take(n).as_numpy_iterator())


@pytest.mark.slow
def test_decoder_trains_on_a_mixture_with_lm_text(tmp_path, mixtures_path):
    mixtures_path(_mixture_dir(tmp_path / "mix", "lm"))
    result = train(model=DEC, mixture="mini_with_text", feature_lengths={"inputs": 32, "targets": 32},
                   batch_size=8, num_steps=4, model_dir=str(tmp_path / "run"), log_every=1,
                   optimizer=adamw(3e-3, weight_decay=0.0))
    assert len(result.losses) == 4 and all(np.isfinite(result.losses))
    # the text examples (empty inputs: next-token loss on the whole chunk) are half the stream
    rows = _sampled("mini_with_text")
    text = sum(r["inputs"].size == 0 for r in rows)
    assert abs(text / len(rows) - 0.5) < 4 * np.sqrt(0.25 / len(rows)), text


@pytest.mark.slow
def test_t5_trains_on_a_mixture_with_span_corrupted_text(tmp_path, mixtures_path, extra_ids):
    mixtures_path(_mixture_dir(tmp_path / "mix", "span_corruption"))
    result = train(model=T5_TINY, mixture="mini_with_text", feature_lengths={"inputs": 32, "targets": 16},
                   batch_size=8, num_steps=3, model_dir=str(tmp_path / "run"),
                   optimizer=adamw(3e-3, weight_decay=0.0))
    assert len(result.losses) == 3 and all(np.isfinite(result.losses))
    rows = _sampled("mini_with_text", 100)
    sentinel_0 = 1124 - 1  # vocab_size (1024 pieces + 100 extra ids) - 1
    corrupted = [r for r in rows if sentinel_0 in r["inputs"].tolist()]
    assert corrupted and all(r["targets"][0] == sentinel_0 for r in corrupted)


def test_the_wrong_objective_for_the_model_is_refused(tmp_path, mixtures_path):
    mixtures_path(_mixture_dir(tmp_path / "mix", "span_corruption"))
    with pytest.raises(FlanJaxError, match="text component 'text.greek:span_corruption' has objective "
                       "'span_corruption', but the model's own objective is 'lm'"):
        train(model=DEC, mixture="mini_with_text", feature_lengths={"inputs": 8, "targets": 8}, batch_size=8,
              num_steps=1, model_dir=str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run" / "checkpoints")
