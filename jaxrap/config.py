"""The run config: everything a user tunes for `jaxrap train`, typed and validated.

A YAML file in ``configs/`` with sections ``model``, ``data``, ``optim``, ``train`` and ``mesh``,
plus ``--set section.key=value`` overrides (the value is read as a YAML scalar, so ``3e-4``,
``true`` and ``null`` mean what they look like). Unknown keys and bad values are refused with
one line per problem naming the key (one problem: a single line). The resolved config is saved as ``config.yaml`` in the run
directory and inside every checkpoint.

Pure Python (pydantic + PyYAML, no jax): configs load, validate and print instantly.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from jaxrap.byte_sizes import size_problem
from jaxrap.errors import JaxrapError
from jaxrap.shape_rules import block_size_problem, width_problem

SCRATCH = "scratch"  # model.init value for a random-init model of model.shape


class Section(BaseModel):
    # extra="forbid": a typo in a key is an error, never a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class ShapeConfig(Section):
    """A from-scratch model's shape (model.init: scratch); vocab_size comes from the tokenizer."""

    model_type: Literal["gpt2", "llama", "mistral", "qwen2", "qwen3"] = Field(
        "gpt2", description="family: gpt2 (learned positions, GELU MLP) or a Llama-style block (RoPE, RMSNorm, SwiGLU, GQA)"
    )
    n_layer: int = Field(4, gt=0, description="transformer blocks")
    n_head: int = Field(4, gt=0, description="attention heads; n_embd must divide by it (unless head_dim is set)")
    n_embd: int = Field(256, gt=0, description="width of the residual stream")
    n_positions: int = Field(256, gt=0, description="longest context; at least data.block_size")
    dropout: float = Field(
        0.1, ge=0.0, lt=1.0, description="embedding, attention and residual dropout (Llama-style: attention dropout only)"
    )
    n_kv_head: int | None = Field(
        None, gt=0, description="Llama-style: key/value heads (grouped-query attention; n_head must divide by it); null: n_head"
    )
    n_inner: int | None = Field(
        None, gt=0, description="MLP width; null: 4 * n_embd (gpt2), 8/3 * n_embd rounded up to a multiple of 64 (Llama-style)"
    )
    head_dim: int | None = Field(None, gt=0, description="Llama-style: per-head width; null: n_embd / n_head")
    rope_theta: float = Field(10000.0, gt=0.0, description="Llama-style: RoPE base")
    tie_word_embeddings: bool | None = Field(
        None, description="LM head tied to the token embedding; null: the family's default (gpt2 tied, Llama-style untied)"
    )

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ShapeConfig:
        problem = None if self.model_type != "gpt2" and self.head_dim else width_problem(self.n_embd, self.n_head)
        if problem:
            raise ValueError(f"n_embd: {problem}")
        if self.model_type == "gpt2":
            llama_only = [name for name in ("n_kv_head", "head_dim") if getattr(self, name) is not None]
            if llama_only:
                raise ValueError(f"{llama_only[0]}: only for a Llama-style model_type (llama, mistral, qwen2, qwen3), not gpt2")
        elif self.n_kv_head is not None and self.n_head % self.n_kv_head:
            raise ValueError(f"n_kv_head: n_head ({self.n_head}) must be a multiple of n_kv_head, got {self.n_kv_head}")
        return self


class LoraConfig(Section):
    """LoRA: train low-rank adapters on chosen linear layers of a frozen pretrained model
    (``jaxrap.model.lora``); the artist tokens' new embedding rows train with them."""

    rank: int = Field(16, gt=0, description="rank r of each adapter: A is (in, r), B is (r, out); at most the smaller side of a target")
    alpha: float = Field(32.0, gt=0.0, description="scale: the update is (alpha / rank) x A B")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on each adapted layer's input, before A (training only)")
    targets: str | list[str] | None = Field(
        None,
        description="linear layers to adapt: HF module names (a list: c_attn, q_proj, ...) or a regex matched in full"
        " against each layer's name and dotted path (q_proj|v_proj); null: every linear layer of the blocks",
    )

    @model_validator(mode="after")
    def _targets_are_names_or_a_regex(self) -> LoraConfig:
        if isinstance(self.targets, list) and not all(name.strip() for name in self.targets) or self.targets in ("", []):
            raise ValueError(f"targets: expected module names or a regex, got {self.targets!r}")
        if isinstance(self.targets, str):
            try:
                re.compile(self.targets)
            except re.error as error:
                raise ValueError(f"targets: not a valid regex ({error}), got {self.targets!r}") from None
        return self


class ModelConfig(Section):
    init: str = Field(SCRATCH, description="'scratch' (random init of model.shape), a Hugging Face model directory, or a hub id")
    shape: ShapeConfig | None = Field(None, description="from-scratch shape; only with init: scratch (default shape when omitted)")
    tokenizer: str | None = Field(
        None,
        description="tokenizer directory or hub id; null: the pretrained model's own,"
        " or a BPE trained on the corpus into RUN/tokenizer for scratch",
    )
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="compute dtype of matmuls; master weights and optimizer state stay float32"
    )
    lora: LoraConfig | None = Field(None, description="train LoRA adapters on a frozen model.init; null: full fine-tuning")
    base_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="with lora: dtype the frozen base is stored in on the devices (bfloat16 halves it)"
    )

    @model_validator(mode="after")
    def _shape_only_for_scratch(self) -> ModelConfig:
        if self.init == SCRATCH and self.shape is None:
            self.shape = ShapeConfig()
        elif self.init != SCRATCH and self.shape is not None:
            raise ValueError(f"shape: only used with init: {SCRATCH} (init is {self.init!r}); remove it")
        if self.lora is not None and self.init == SCRATCH:
            raise ValueError(f"lora: needs a pretrained model.init to adapt (a {SCRATCH} model's random weights would stay frozen)")
        if self.base_dtype != "float32" and self.lora is None:
            raise ValueError(
                f"base_dtype: {self.base_dtype} needs model.lora (full fine-tuning keeps float32 master weights)"
            )
        return self


class DataConfig(Section):
    path: str = Field("data/rap", description="prepared corpus directory (made by `jaxrap prepare`, or by `jaxrap train` from data.source)")
    source: str | None = Field(
        None,
        description="CSV path or URL to prepare data.path from when it holds no corpus; null: $JAXRAP_LYRICS_CSV, else the public corpus",
    )
    block_size: int = Field(256, gt=1, description="tokens per training sequence; at most the model's n_positions")
    vocab_size: int = Field(8000, gt=0, description="BPE vocabulary size when a tokenizer is trained on the corpus")
    artist_tokens: bool = Field(
        False, description="prefix each song with an <|artist:NAME|> control token from its artist column (generate --artist)"
    )
    min_artist_songs: int = Field(
        20, ge=1, description="train songs an artist needs for its own token; fewer share <|artist:unknown|>"
    )
    artist_dropout: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="share of train songs prefixed with <|artist:unknown|> instead of their artist's token"
        " (trains the unconditioned branch of generate --artist-guidance); validation keeps each song's own",
    )

    @model_validator(mode="after")
    def _dropout_needs_artist_tokens(self) -> DataConfig:
        if self.artist_dropout > 0 and not self.artist_tokens:
            raise ValueError(f"artist_dropout: needs artist_tokens: true (there is no artist token to drop), got {self.artist_dropout}")
        return self


class OptimConfig(Section):
    lr: float = Field(3e-4, gt=0.0, description="peak learning rate (AdamW)")
    warmup_steps: int = Field(100, ge=0, description="linear warmup from 0 to lr (capped at train.steps)")
    schedule: Literal["linear", "cosine", "constant"] = Field("cosine", description="decay after warmup down to lr * end_lr_ratio")
    end_lr_ratio: float = Field(0.1, ge=0.0, le=1.0, description="final learning rate as a fraction of lr")
    weight_decay: float = Field(0.1, ge=0.0, description="AdamW decoupled weight decay on matmul weights only")
    b1: float = Field(0.9, ge=0.0, lt=1.0, description="AdamW first-moment decay")
    b2: float = Field(0.95, ge=0.0, lt=1.0, description="AdamW second-moment decay")
    eps: float = Field(1e-8, gt=0.0, description="AdamW denominator epsilon")
    clip_norm: float | None = Field(1.0, gt=0.0, description="clip gradients to this global L2 norm; null: no clipping")


class TrainConfig(Section):
    steps: int = Field(1000, gt=0, description="optimizer steps in the whole run (a resumed run continues to this)")
    per_device_batch_size: int = Field(4, gt=0, description="sequences per device per micro-batch")
    grad_accum_steps: int = Field(1, gt=0, description="micro-batches summed per optimizer step")
    eval_batch_size: int | None = Field(None, gt=0, description="sequences per device in evaluation; null: per_device_batch_size")
    seed: int = Field(0, description="seed of init, data order and dropout")
    log_every: int = Field(10, gt=0, description="steps between logged metrics (console, metrics.jsonl, TensorBoard)")
    eval_every: int = Field(1000, gt=0, description="steps between evaluations on the whole validation split (and at the end)")
    save_every: int = Field(500, gt=0, description="steps between checkpoints (also saved at every evaluation and at the end)")
    keep_checkpoints: int = Field(3, gt=0, description="latest checkpoints kept; the best by validation loss is kept too")
    peak_flops: float | None = Field(
        None, gt=0.0, description="per-device peak FLOP/s for MFU; null: a known table for TPU/GPU, a quick matmul measurement on CPU"
    )
    remat: Literal["none", "block"] = Field(
        "none", description="activation rematerialisation: block keeps only each block's input and recomputes the rest"
        " in the backward pass (less memory, more compute)"
    )
    device_memory: str | None = Field(
        None,
        description="memory per device that `jaxrap train` checks the memory plan against, e.g. 16GiB;"
        " null: what the devices report (TPU, GPU), or the host's memory shared by its CPU devices",
    )

    @model_validator(mode="after")
    def _device_memory_parses(self) -> TrainConfig:
        problem = size_problem(self.device_memory) if self.device_memory is not None else None
        if problem:
            raise ValueError(f"device_memory: {problem}")
        return self


class MeshConfig(Section):
    data: int = Field(-1, description="data-parallel axis size; -1: all devices not used by fsdp")
    fsdp: int = Field(1, gt=0, description="axis that shards params and optimizer state (also splits the batch)")

    @model_validator(mode="after")
    def _data_positive_or_all(self) -> MeshConfig:
        if self.data == 0 or self.data < -1:
            raise ValueError(f"data: must be a positive device count or -1 (all devices), got {self.data}")
        return self


class RunConfig(Section):
    model: ModelConfig = Field(default_factory=ModelConfig, description="what to train")
    data: DataConfig = Field(default_factory=DataConfig, description="corpus and sequences")
    optim: OptimConfig = Field(default_factory=OptimConfig, description="optimizer and schedule")
    train: TrainConfig = Field(default_factory=TrainConfig, description="loop length, batches, logging, checkpoints")
    mesh: MeshConfig = Field(default_factory=MeshConfig, description="device mesh")

    @model_validator(mode="after")
    def _block_fits_context(self) -> RunConfig:
        shape = self.model.shape
        problem = block_size_problem(self.data.block_size, shape.n_positions, "model.shape.n_positions") if shape else None
        if problem:
            raise ValueError(f"data.block_size: {problem}")
        return self

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """The config at ``path`` (None: all defaults) with ``section.key=value`` overrides applied."""
    data = _read_yaml(Path(path)) if path is not None else {}
    for override in overrides:
        _apply_override(data, override)
    return config_from_dict(data, source=str(path) if path is not None else "config")


def config_from_dict(data: dict[str, Any], source: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        problems = [_describe(problem) for problem in error.errors()]
        # One problem: one line; several: one line each, under the file's.
        raise JaxrapError(f"{source}: invalid config" + (": " if len(problems) == 1 else "\n") + "\n".join(problems)) from None


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{"section.key": value}``: how messages name what differs."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JaxrapError(f"{path}: no such config file; see configs/ for examples") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise JaxrapError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise JaxrapError(f"{path}: expected a mapping with sections {', '.join(RunConfig.model_fields)}")
    return data


def _apply_override(data: dict[str, Any], override: str) -> None:
    """Set ``section.key[.subkey]=value`` in the raw config mapping."""
    import yaml

    key, sep, raw = override.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise JaxrapError(f"--set {override!r}: expected section.key=value, e.g. train.steps=200")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw  # not a YAML scalar: the string as typed (validation decides)
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise JaxrapError(f"--set {override!r}: {'.'.join(parts[: i + 1])} is not a section")
        node = child
    node[parts[-1]] = value


_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_TYPES = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "string_type": "a string", "model_type": "a mapping of keys",
    "dict_type": "a mapping of keys",
}


def _describe(problem: ErrorDetails) -> str:
    """One pydantic problem as ``key: what is wrong, got value``."""
    loc = tuple(str(part) for part in problem["loc"])
    key = ".".join(loc) or "config"
    kind, value = problem["type"], problem.get("input")
    if kind == "extra_forbidden":
        known = list(_section_fields(loc[:-1]))
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"{key}: unknown key; {hint}known keys: {', '.join(known)}"
    if kind in _BOUNDS:
        (bound,) = problem["ctx"].values()
        return f"{key}: must be {_BOUNDS[kind]} {bound}, got {value!r}"
    if kind == "literal_error":
        return f"{key}: must be one of {problem['ctx']['expected']}, got {value!r}"
    if kind in _TYPES:
        return f"{key}: must be {_TYPES[kind]}, got {value!r}"
    # Our validators phrase their messages "field: what is wrong", relative to their section.
    message = problem["msg"].removeprefix("Value error, ")
    return ".".join((*loc, message)) if kind == "value_error" else f"{key}: {message}"


def _section_fields(loc: tuple[str, ...]) -> dict[str, Any]:
    """Field names of the section at ``loc`` (() is the top level)."""
    model: type[BaseModel] = RunConfig
    for part in loc:
        annotation = model.model_fields[part].annotation
        model = next(t for t in (annotation, *getattr(annotation, "__args__", ())) if isinstance(t, type) and issubclass(t, BaseModel))
    return model.model_fields
