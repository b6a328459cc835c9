"""The model families jaxrap runs, keyed by config.json's ``model_type``, and the one config
interface every family's config offers (``LMConfig``).

| model_type | config | network (``jaxrap.model.<module>``) | transformers class |
|---|---|---|---|
| gpt2 | ``GPT2Config`` | ``gpt2`` | GPT2LMHeadModel |
| llama, mistral, qwen2, qwen3 | ``LlamaConfig`` | ``llama`` | LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM |

Everything above the model layer holds an ``LMConfig`` and never asks which family it is:
training, sampling and evaluation call ``jaxrap.model.lm`` with it, HF I/O goes through
``jaxrap.model.hf``. Pure Python (no jax): configs load and validate without starting XLA,
so a bad ``model_type``, RoPE type or head count is refused before any weight is read.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jaxrap.errors import JaxrapError
from jaxrap.model.config import GPT2Config
from jaxrap.model.llama_config import VARIANTS, LlamaConfig

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

# model_type -> the module of jaxrap.model that holds its network.
MODULES = {"gpt2": "gpt2", **{model_type: "llama" for model_type in VARIANTS}}
MODEL_TYPES = tuple(MODULES)


class LMConfig(Protocol):
    """What every family's config answers (GPT2Config, LlamaConfig): frozen and hashable, so
    jitted programs can be cached per config."""

    def __hash__(self) -> int: ...

    @property
    def model_type(self) -> str: ...  # config.json's model_type

    @property
    def vocab_size(self) -> int: ...

    @property
    def n_positions(self) -> int: ...  # longest context jaxrap runs the model at

    @property
    def context_name(self) -> str: ...  # the config.json field n_positions comes from, for messages

    @property
    def n_layer(self) -> int: ...

    @property
    def n_kv_head(self) -> int: ...  # heads the KV cache holds (fewer than the query heads with GQA)

    @property
    def head_dim(self) -> Any: ...  # int (LlamaConfig's field is resolved on construction)

    @property
    def tie_word_embeddings(self) -> bool: ...

    @property
    def bos_token_id(self) -> int | None: ...

    @property
    def eos_token_id(self) -> int | None: ...

    @property
    def pad_token_id(self) -> int | None: ...

    def describe(self) -> str: ...  # "GPT-2 4 layers x 256 wide, 4 heads"

    def num_params(self) -> int: ...

    def flops_per_token(self, seq_len: int) -> float: ...  # training FLOPs per token (forward + backward)

    def replace(self, **changes: Any) -> Any: ...  # the same family's config with fields changed

    def for_tokenizer(self, tokenizer: PreTrainedTokenizerFast) -> Any: ...  # vocab size and special ids of the tokenizer

    def to_hf_dict(self) -> dict[str, Any]: ...  # config.json that transformers' class loads


def config_from_hf_dict(data: dict[str, Any], source: str = "config.json") -> LMConfig:
    """The config of a transformers config dict, by its ``model_type`` (gpt2 when absent)."""
    model_type = data.get("model_type", "gpt2")
    if model_type not in MODULES:
        raise JaxrapError(
            f"{source}: model_type {model_type!r} is not supported; jaxrap runs {', '.join(MODEL_TYPES)}"
        )
    if model_type == "gpt2":
        return GPT2Config.from_hf_dict(data, source)
    return LlamaConfig.from_hf_dict(data, source)


def read_config(path: str | Path) -> LMConfig:
    """A model config from a YAML or JSON file.

    A Hugging Face config.json (it has ``model_type``) keeps only the fields jaxrap uses; any
    other file is a GPT-2 shape and must name GPT2Config fields only, so a typo is refused,
    not ignored.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except FileNotFoundError:
        raise JaxrapError(f"{path}: no such file") from None
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise JaxrapError(f"{path}: not valid YAML or JSON ({error})".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise JaxrapError(f"{path}: expected a mapping of model config fields")
    if "model_type" not in data:
        known = {f.name for f in dataclasses.fields(GPT2Config)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise JaxrapError(
                f"{path}: unknown GPT-2 config field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(known))}"
                " (or set model_type to one of " + ", ".join(MODEL_TYPES) + ")"
            )
    return config_from_hf_dict(data, source=str(path))


def scratch_config(
    model_type: str,
    *,
    n_layer: int,
    n_head: int,
    n_embd: int,
    n_positions: int,
    dropout: float,
    n_kv_head: int | None = None,
    n_inner: int | None = None,
    head_dim: int | None = None,
    rope_theta: float = 10000.0,
    tie_word_embeddings: bool | None = None,
) -> LMConfig:
    """A from-scratch model's config from a run config's ``model.shape`` (vocab and special ids
    come later, from the tokenizer). GPT-2 applies ``dropout`` to embeddings, attention and
    residuals; a Llama-style block has attention dropout only. A Llama-style MLP defaults to
    8/3 of the width rounded up to a multiple of 64, about a 4x GELU MLP's parameters."""
    if model_type == "gpt2":
        return GPT2Config(
            n_layer=n_layer, n_head=n_head, n_embd=n_embd, n_positions=n_positions, n_inner=n_inner,
            resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
            tie_word_embeddings=True if tie_word_embeddings is None else tie_word_embeddings,
        )
    return LlamaConfig(
        model_type=model_type, hidden_size=n_embd, intermediate_size=n_inner or -(-8 * n_embd // 3 // 64) * 64,
        num_hidden_layers=n_layer, num_attention_heads=n_head, num_key_value_heads=n_kv_head, head_dim=head_dim,
        max_position_embeddings=n_positions, rope_theta=rope_theta, attention_dropout=dropout,
        tie_word_embeddings=bool(tie_word_embeddings), sliding_window=None,
    )
