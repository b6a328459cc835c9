"""Hugging Face checkpoint I/O for every family: read and write the files transformers'
classes use (GPT2LMHeadModel, LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
Qwen3ForCausalLM; ``jaxrap.model.registry``).

Reads ``config.json`` with ``model.safetensors`` (single or sharded), ``flax_model.msgpack``
or ``pytorch_model.bin`` (``tensor_files``); writes ``config.json`` + ``model.safetensors``
(+ tokenizer files). Names and transposes come from the family's ``CheckpointLayout``
(``hf_names``). Before a weight is read, every tensor the config implies is looked up in the
file headers, and a missing one or a wrong shape is refused naming the tensor. Then tensors
are read one at a time, converted to the wanted dtype and, given shardings, placed straight
onto the devices (each device gets its slice): the host never holds the whole checkpoint
twice (docs/models.md has the measured peak). A config with ``tie_word_embeddings: false`` has
its own LM head, ``lm_head.weight``, read and written; a tied one has none, as transformers
saves it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxrap.errors import JaxrapError
from jaxrap.hub import is_hub_id
from jaxrap.model.hf_names import CheckpointLayout, layout
from jaxrap.model.registry import LMConfig, read_config
from jaxrap.model.tensor_files import WEIGHT_FILES, open_checkpoint

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

_HUB_PATTERNS = ["config.json", "*.safetensors", "model.safetensors.index.json", "flax_model.msgpack",
                 "pytorch_model.bin", "tokenizer*", "vocab.json", "merges.txt", "special_tokens_map.json",
                 "generation_config.json"]
__all__ = ["WEIGHT_FILES", "hf_name", "load_config", "load_pretrained", "resolve_model_dir", "save_pretrained"]

# How a loaded leaf may be changed before it is placed: (params path, float host array) -> array.
Adapt = Callable[[tuple, np.ndarray], np.ndarray]


def resolve_model_dir(name_or_path: str | Path) -> Path:
    """A local directory as is; anything else is a hub id, downloaded once into the HF cache."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise JaxrapError(f"{path}: is a file; pass the model directory that holds config.json")
    name = str(name_or_path)
    if not is_hub_id(name):
        raise JaxrapError(f"{name}: no such model directory")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=name, allow_patterns=_HUB_PATTERNS))
    except Exception as error:  # noqa: BLE001 - network, auth and 404s all mean "not reachable"
        raise JaxrapError(
            f"{name}: not a local directory and could not be fetched from the Hugging Face hub"
            f" ({type(error).__name__}); pass a local model directory, or run"
            f" `jaxrap init` to make one offline"
        ) from None


def hf_name(config: LMConfig, path: tuple) -> str:
    """Our params path -> the checkpoint's tensor name ('transformer.h.3.attn.c_attn.weight')."""
    return layout(config).name(path)


def load_config(model_dir: str | Path) -> LMConfig:
    config_path = Path(model_dir) / "config.json"
    if not config_path.is_file():
        raise JaxrapError(f"{model_dir}: no config.json; is this a Hugging Face model directory?")
    return read_config(config_path)


def load_pretrained(
    name_or_path: str | Path, *, shardings: Any = None, dtype: Any = np.float32, adapt: Adapt | None = None
) -> tuple[LMConfig, dict[str, Any]]:
    """(config, params) from a model directory or hub id.

    Without ``shardings``, params are host numpy arrays of ``dtype`` in our pure-dict layout
    and the caller decides where they go. With ``shardings`` (a tree of ``jax.sharding``s
    shaped like the params), each tensor goes straight onto its devices as it is read.
    ``adapt`` may change a leaf on the host first (grow an embedding: the sharding then
    describes the grown array).
    """
    from jaxrap.model import lm

    model_dir = resolve_model_dir(name_or_path)
    config = load_config(model_dir)
    files = open_checkpoint(model_dir)
    names = _names(files.shapes, layout(config))  # canonical name -> name in the files
    leaves = _checked_leaves(lm.abstract(config)[1], files.shapes, names, layout(config), config, str(model_dir))

    def load(path: tuple, name: str, transposed: bool, target: Any) -> Any:
        stored = files.read(names[name])  # (out, in) for a transposed kernel
        array = np.ascontiguousarray(stored.T if transposed else stored, dtype=np.float32 if adapt else dtype)
        del stored
        if adapt is not None:
            array = np.asarray(adapt(path, array), dtype)
        return array if target is None else _place(array, target)

    params: dict[str, Any] = {}
    for path, name, transposed in leaves:
        _set(params, path, load(path, name, transposed, _get(shardings, path) if shardings is not None else None))
    return config, params


def _names(shapes: dict[str, tuple[int, ...]], names: CheckpointLayout) -> dict[str, str]:
    canonical = {}
    for name in shapes:
        key = names.canonical(name)
        if key is not None:
            canonical[key] = name
    return canonical


def _checked_leaves(
    template: Any, shapes: dict[str, tuple[int, ...]], names: dict[str, str], checkpoint: CheckpointLayout,
    config: LMConfig, source: str,
) -> list[tuple[tuple, str, bool]]:
    """(params path, canonical name, transposed) of every leaf, after checking that the files
    hold each with the shape the config implies."""
    import jax

    leaves = []
    for key_path, leaf in jax.tree_util.tree_flatten_with_path(template)[0]:
        path = tuple(key.key for key in key_path)
        name, transposed = checkpoint.name(path), checkpoint.transposed(path)
        if name not in names:
            untied = " (config.json sets tie_word_embeddings: false)" if path[0] == "lm_head" else ""
            raise JaxrapError(
                f"{source}: checkpoint has no tensor {name}{untied} (is it a {checkpoint.family} LM checkpoint"
                f" of this config, {config.describe()}?)"
            )
        expected = tuple(leaf.shape)[::-1] if transposed else tuple(leaf.shape)
        if tuple(shapes[names[name]]) != expected:
            raise JaxrapError(
                f"{source}: tensor {name} has shape {tuple(shapes[names[name]])}, but config.json implies {expected}"
            )
        leaves.append((path, name, transposed))
    return leaves


def _place(host: np.ndarray, sharding: Any) -> Any:
    """``host`` onto ``sharding``'s devices, each device's slice copied from it."""
    import jax

    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _get(tree: Any, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: dict, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def save_pretrained(
    out_dir: str | Path, config: LMConfig, params: dict[str, Any], tokenizer: PreTrainedTokenizerFast | None = None
) -> Path:
    """Write config.json + model.safetensors (float32) (+ tokenizer files) for transformers to load."""
    import jax
    from safetensors.numpy import save_file

    if ("lm_head" in params) == config.tie_word_embeddings:
        raise JaxrapError(
            f"params {'with' if 'lm_head' in params else 'without'} an lm_head do not match"
            f" tie_word_embeddings: {str(config.tie_word_embeddings).lower()}"
        )
    checkpoint = layout(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key_path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        path = tuple(key.key for key in key_path)
        array = np.asarray(jax.device_get(leaf), dtype=np.float32)
        tensors[checkpoint.name(path)] = np.ascontiguousarray(array.T if checkpoint.transposed(path) else array)
    save_file(dict(sorted(tensors.items())), out / "model.safetensors", metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config.to_hf_dict(), indent=2, sort_keys=True) + "\n")
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return out
