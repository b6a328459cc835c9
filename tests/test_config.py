"""The run config: defaults, --set overrides, one-line errors naming the key, shipped configs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jaxrap.config import RunConfig, Section, ShapeConfig, load_config
from jaxrap.errors import JaxrapError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_are_valid_and_every_field_is_described():
    config = load_config(None)
    assert config.model.init == "scratch" and config.model.shape == ShapeConfig()
    assert config.train.save_every == 500 and config.train.eval_every == 1000
    assert config.mesh.data == -1 and config.mesh.fsdp == 1

    def walk(model):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            annotation = field.annotation
            for sub in (annotation, *getattr(annotation, "__args__", ())):
                if isinstance(sub, type) and issubclass(sub, Section) and sub is not model:
                    walk(sub)

    walk(RunConfig)


def test_overrides_parse_yaml_scalars_and_nested_keys(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  steps: 10\nmodel:\n  init: scratch\n")
    config = load_config(path, ["train.steps=20", "optim.lr=3e-4", "optim.clip_norm=null",
                                "model.shape.n_layer=2", "train.peak_flops=1.5e11"])
    assert config.train.steps == 20
    assert config.optim.lr == pytest.approx(3e-4)
    assert config.optim.clip_norm is None
    assert config.model.shape.n_layer == 2 and config.model.shape.n_embd == ShapeConfig().n_embd
    assert config.train.peak_flops == pytest.approx(1.5e11)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.steps=-3"], "train.steps: must be > 0, got -3"),
        (["train.stepz=3"], "train.stepz: unknown key; did you mean steps?"),
        (["optim.schedule=exponential"], "optim.schedule: must be one of 'linear', 'cosine' or 'constant', got 'exponential'"),
        (["train.seed=abc"], "train.seed: must be an integer, got 'abc'"),
        (["model.shape.n_head=3"], "model.shape.n_embd: must be divisible by n_head (3), got 256"),
        (["data.block_size=512"], "data.block_size: must be <= model.shape.n_positions (256), got 512"),
        (["model.init=gpt2", "model.shape.n_layer=2"], "model.shape: only used with init: scratch"),
        (["mesh.data=0"], "mesh.data: must be a positive device count or -1"),
        (["model.dtype=float16"], "model.dtype: must be one of 'float32' or 'bfloat16', got 'float16'"),
        (["model=3"], "expected section.key=value"),
        (["data.artist_tokens=true", "data.artist_dropout=1"], "data.artist_dropout: must be < 1.0, got 1"),
        (["data.artist_tokens=true", "data.artist_dropout=-0.1"], "data.artist_dropout: must be >= 0.0, got -0.1"),
        (["data.artist_dropout=0.1"], "data.artist_dropout: needs artist_tokens: true (there is no artist token to drop), got 0.1"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(JaxrapError) as error:
        load_config(None, overrides)
    assert message in str(error.value)


def test_every_problem_gets_its_own_line():
    with pytest.raises(JaxrapError) as error:
        load_config(None, ["train.steps=0", "optim.lr=-1", "data.colour=red"])
    lines = str(error.value).splitlines()
    assert lines[0] == "config: invalid config"
    assert sorted(line.split(":")[0] for line in lines[1:]) == ["data.colour", "optim.lr", "train.steps"]


def test_pretrained_init_has_no_shape():
    config = load_config(None, ["model.init=some/hub-id", "data.block_size=1024"])
    assert config.model.shape is None  # the checkpoint's config.json gives the shape


def test_unreadable_files_are_clear(tmp_path):
    with pytest.raises(JaxrapError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(JaxrapError, match="not valid YAML"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n")
    with pytest.raises(JaxrapError, match="expected a mapping"):
        load_config(listing)


def test_saved_config_loads_back_identically(tmp_path):
    config = load_config(None, ["train.steps=7", "model.shape.dropout=0.0"])
    path = config.save(tmp_path / "run" / "config.yaml")
    assert load_config(path) == config
    assert yaml.safe_load(path.read_text())["train"]["steps"] == 7


@pytest.mark.parametrize("name", ["tiny_cpu.yaml", "belgpt2_rap.yaml", "llama_tiny_cpu.yaml", "croissant_rap.yaml"])
def test_shipped_configs_load(name):
    config = load_config(CONFIGS / name)
    assert config.train.save_every in (100, 500)
    if name in ("belgpt2_rap.yaml", "croissant_rap.yaml"):
        inits = {"belgpt2_rap.yaml": "antoinelouis/belgpt2", "croissant_rap.yaml": "croissantllm/CroissantLLMBase"}
        assert config.model.init == inits[name]
        assert (config.data.block_size, config.train.per_device_batch_size) == (1024, 4)
        assert (config.train.eval_every, config.train.save_every) == (1000, 500)
        assert config.model.dtype == ("bfloat16" if name == "croissant_rap.yaml" else "float32")
    else:
        assert config.model.init == "scratch" and config.model.tokenizer is None
        assert config.model.shape.model_type == ("llama" if name == "llama_tiny_cpu.yaml" else "gpt2")


def test_config_module_does_not_import_jax():
    code = "import sys, jaxrap.config; sys.exit('jax' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
