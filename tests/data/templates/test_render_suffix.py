"""RenderConfig.inputs_suffix: appended to every rendered input, default empty; gin sets the default."""
import gin

from flan_jax.data.templates import flan_nl
from flan_jax.data.tasks import registry as tasks


def _render(config, variant="eval_t0"):
    spec = flan_nl.cluster_datasets("nl_topic")[0]
    src = spec.sources[spec.name]
    fields = src.generate(src.split_seeds["test"], 1)[0]
    return tasks.ExampleRenderer(spec, f"flan_nl.{spec.name}:{variant}", variant, tuple(spec.templates), config)(fields)


def test_suffix_is_appended_and_nothing_else_changes():
    plain = _render(tasks.RenderConfig())
    with_sep = _render(tasks.RenderConfig(inputs_suffix="\n"))
    assert with_sep["inputs"] == plain["inputs"] + "\n"
    assert {k: v for k, v in with_sep.items() if k != "inputs"} == {k: v for k, v in plain.items() if k != "inputs"}


def test_gin_sets_the_default_render_config():
    assert tasks.default_render_config().inputs_suffix == ""
    with gin.unlock_config():
        gin.bind_parameter("default_render_config.inputs_suffix", "\n")
    try:
        assert tasks.default_render_config().inputs_suffix == "\n"
    finally:
        with gin.unlock_config():
            gin.bind_parameter("default_render_config.inputs_suffix", "")
