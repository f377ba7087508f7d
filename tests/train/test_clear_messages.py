"""Clear messages for two bad inputs that used to get a true but unhelpful line: a gin value
written without quotes (the binding is named and the quoted form given), and a checkpoint whose
JSON metadata file is truncated (that file is named, not only its step folder)."""
import os

import gin
import pytest

from flan_jax import cli
from flan_jax.errors import FlanJaxError
from flan_jax.train import gin_config
from flan_jax.train.train import train
from train_tiny_model import TinyLM


@pytest.mark.parametrize("binding,key,value", [("train.num_steps=abc", "train.num_steps", "abc"),
                                               ("train.mixture = some_name", "train.mixture", "some_name"),
                                               ("x.y=flan_mini.add:zs_opt", "x.y", "flan_mini.add:zs_opt")])
def test_a_bare_word_names_the_binding_and_the_quoted_form(binding, key, value):
    with pytest.raises(FlanJaxError) as info:
        gin_config.parse_gin(["runs/finetune.gin"], [binding])
    gin.clear_config()
    text = str(info.value)
    assert text.startswith(f"gin binding {key}: {value} is not a gin value (text must be quoted")
    assert f"""--gin.{key}="'{value}'" """.strip() in text and f"{key} = '{value}' in a gin file" in text
    assert "ast." not in text and "0x" not in text and "\n" not in text


def test_the_cli_prints_it_on_one_line(capsys):
    assert cli.main(["train", "--gin_file=runs/finetune.gin", "--gin.train.num_steps=abc"]) == 2
    err = capsys.readouterr().err.strip()
    gin.clear_config()
    assert """--gin.train.num_steps="'abc'\"""" in err and "\n" not in err and "ast.Name" not in err


def test_a_bare_word_in_a_gin_file_names_file_line_and_the_quoting(tmp_path):
    path = tmp_path / "bad.gin"
    path.write_text("# run\ntrain.mixture = flan_mini\n")
    with pytest.raises(FlanJaxError) as info:
        gin_config.parse_gin([str(path)], [])
    gin.clear_config()
    assert str(info.value).startswith(f"gin file {path}:2: flan_mini is not a gin value (text must be quoted: 'flan_mini'")


ARGS = dict(model=TinyLM(), mixture="synthetic", feature_lengths={"inputs": 4, "targets": 4}, batch_size=8,
            log_every=100)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt") / "run"
    train(model_dir=str(root), num_steps=1, checkpoint_every=1, **ARGS)
    return root


# (a truncated _CHECKPOINT_METADATA is not read for the restore: orbax resumes without it)
@pytest.mark.slow
@pytest.mark.parametrize("name", ["state/_METADATA", "state/_sharding", "data/metadata"])
def test_a_truncated_metadata_file_is_named(trained, tmp_path, name):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    path = run / "checkpoints" / "1" / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FlanJaxError) as info:
        train(model_dir=str(run), num_steps=2, checkpoint_every=1, **ARGS)
    assert f"file {path} " in str(info.value), str(info.value)
