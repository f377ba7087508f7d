"""Every gin file parses and builds; t5x-style flags; bad files and bindings are clear errors."""
import argparse
from pathlib import Path

import gin
import pytest

from flan_jax import cli
from flan_jax.errors import FlanJaxError
from flan_jax.commands import train as train_cmd
from flan_jax.train import gin_config

GIN_DIR = Path(__file__).resolve().parents[2] / "gin_configs"
MODEL_FILES = sorted(p.relative_to(GIN_DIR).as_posix() for p in (GIN_DIR / "models").glob("*.gin"))
RUN_FILES = sorted(p.relative_to(GIN_DIR).as_posix() for p in (GIN_DIR / "runs").glob("*.gin"))
EXPERIMENTS = sorted(p.relative_to(GIN_DIR).as_posix() for p in (GIN_DIR / "experiments").glob("*.gin"))


def test_the_folders_are_not_empty():
    assert MODEL_FILES and RUN_FILES and EXPERIMENTS
    assert {"experiments/flan_mini_decoder_tiny.gin", "experiments/flan_mini_t5_tiny.gin"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", MODEL_FILES)
def test_model_file_builds_its_config(name):
    gin_config.parse_gin([name], [])
    from flan_jax.models.decoder import DecoderConfig
    from flan_jax.models.gemma import Gemma3Config
    from flan_jax.models.t5 import T5Config

    config = (T5Config() if name.startswith("models/t5") else
              Gemma3Config() if name.startswith("models/gemma") else DecoderConfig())
    assert config.vocab_size > 0
    gin.clear_config()


@pytest.mark.parametrize("name", RUN_FILES)
def test_run_file_parses_and_builds_its_optimizer(name):
    gin_config.parse_gin([name], ["MODEL_DIR = '/tmp/unused'"])
    from flan_jax.train.train_setup import loss_options

    optimizer = gin.query_parameter("train.optimizer").scoped_configurable_fn()
    assert callable(optimizer.learning_rate) and optimizer.tx is not None
    assert loss_options()["z_loss"] == pytest.approx(1e-4)
    gin.clear_config()


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_dry_run_builds(name):
    """Model, optimizer, mesh, mixture registration and abstract state: everything but running."""
    gin_config.parse_gin([name], ["MODEL_DIR = '/tmp/unused'"])
    from flan_jax.train.train import train

    try:
        gin.query_parameter("train.mixture")
    except ValueError:  # a job file whose program picks the mixture (main_job.gin)
        gin.bind_parameter("train.mixture", "synthetic")
    try:
        gin.query_parameter("train.model")
    except ValueError:  # main_job.gin: the model comes from the base checkpoint
        from flan_jax.models.gemma import Gemma3Config

        gin.bind_parameter("train.model", Gemma3Config())
    result = train(dry_run=True)
    assert result.state is None
    gin.clear_config()


def parse_cli(argv):
    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    return parser.parse_args(argv)


def test_t5x_style_flags():
    ns = parse_cli(["--gin_file=a.gin", "--gin_file", "b.gin", "--gin.train.batch_size=8",
                    "--gin_bindings=train.seed = 3", "--gin.MODEL_DIR='/x=y'"])
    assert ns.gin_file == ["a.gin", "b.gin"]
    assert ns.gin_bindings == ["train.seed = 3", "train.batch_size=8", "MODEL_DIR='/x=y'"]


def test_search_path_env_and_flag(tmp_path, monkeypatch):
    monkeypatch.setenv(gin_config.GIN_PATH_ENV, str(tmp_path))
    paths = gin_config.gin_search_paths(["/extra"])
    assert paths[:2] == ["/extra", str(tmp_path)] and str(GIN_DIR) in paths
    (tmp_path / "mine.gin").write_text("include 'runs/finetune.gin'\ntrain.num_steps = 7\n")
    gin_config.parse_gin(["mine.gin"], ["MODEL_DIR = '/tmp/x'"])
    assert gin.query_parameter("train.num_steps") == 7
    gin.clear_config()


@pytest.mark.parametrize("files,bindings,msg", [
    (["runs/no_such_run.gin"], [], "gin file 'runs/no_such_run.gin' not found"),
    (["runs/finetune.gin"], ["train.batch_sizee = 3"], "gin binding 'train.batch_sizee = 3'"),
    (["runs/finetune.gin"], ["no_such_configurable.x = 1"], "no_such_configurable"),
    (["runs/finetune.gin"], ["train.num_steps = = 2"], "gin binding"),
])
def test_bad_gin_input(files, bindings, msg):
    with pytest.raises(FlanJaxError, match=msg):
        gin_config.parse_gin(files, bindings)
    gin.clear_config()


def test_cli_prints_one_line_and_exits_2(capsys):
    assert cli.main(["train", "--gin_file=runs/finetune.gin", "--gin.train.batch_sizee=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flan-jax train: error: gin binding") and "\n" not in err
    assert cli.main(["train", "--gin_file=runs/finetune.gin", "--gin.train.mixture='synthetic'",
                     "--gin.train.model=None", "--model_dir=/tmp/unused"]) == 2
    err = capsys.readouterr().err.strip()
    assert "train: no model" in err and "\n" not in err
    gin.clear_config()


def test_vocabulary_file_binding_reaches_the_tasks(tmp_path):
    """`--gin.vocabulary_file.path=...` parses through flan-jax train's gin setup and is what
    data.vocab.default_vocabulary() then loads (a missing file is named)."""
    import gin

    from flan_jax.data.features import vocab
    from flan_jax.train.gin_config import parse_gin

    missing = tmp_path / "spiece.model"
    try:
        parse_gin([], [f"vocabulary_file.path = '{missing}'"])
        with pytest.raises(vocab.VocabularyError, match="spiece.model"):
            vocab.default_vocabulary()
    finally:
        gin.clear_config()


@pytest.mark.parametrize("text, line, message", [
    ("# run\ntrain.num_stepz = 3\n", 2,
     "Configurable 'train' doesn't have a parameter named 'num_stepz'; did you mean 'num_steps'?"),
    ("# run\n\ntrian.num_steps = 3\n", 3, "No configurable matching 'trian'; did you mean 'train'?"),
    ("train.num_steps = 3\ninclude 'no/such/file.gin'\n", 2, "Unable to open file: no/such/file.gin."),
    ("x = 1\nos.system.command = 'ls'\n", 2, "No configurable matching 'os.system'."),
])
def test_bad_gin_file_names_file_line_and_closest_name(tmp_path, text, line, message):
    path = tmp_path / "bad.gin"
    path.write_text(text)
    with pytest.raises(FlanJaxError) as info:
        gin_config.parse_gin([str(path)], [])
    gin.clear_config()
    assert str(info.value).startswith(f"gin file {path}:{line}: {message}")
    assert "\n" not in str(info.value)


def test_bad_statement_in_an_included_file_names_that_file(tmp_path):
    inner = tmp_path / "inner.gin"
    inner.write_text("# inner\ntrain.batch_sizee = 2\n")
    outer = tmp_path / "outer.gin"
    outer.write_text(f"include '{inner}'\n")
    with pytest.raises(FlanJaxError, match=rf"^gin file {inner}:2: .*did you mean 'batch_size'\?"):
        gin_config.parse_gin([str(outer)], [])
    gin.clear_config()


def test_misspelt_binding_gets_the_closest_name():
    with pytest.raises(FlanJaxError, match=r"^gin binding 'train\.num_stepz = 3': .*'num_stepz'; did you mean 'num_steps'\?$"):
        gin_config.parse_gin(["runs/finetune.gin"], ["train.num_stepz = 3"])
    gin.clear_config()
