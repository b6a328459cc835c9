"""Hugging Face checkpoint I/O: read and write the files transformers' GPT2LMHeadModel uses.

Reads ``config.json`` with ``model.safetensors`` (single or sharded), ``flax_model.msgpack``
(the layout of transformers' former Flax GPT-2), or ``pytorch_model.bin`` when torch is
installed; writes ``config.json`` + ``model.safetensors`` (+ tokenizer files). Every tensor's
shape is checked as it is copied, and a mismatch names the tensor. A config with
``tie_word_embeddings: false`` has its own LM head, ``lm_head.weight``, read and written; a
tied one (GPT-2's) has none, as transformers saves it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxrap.errors import JaxrapError
from jaxrap.hub import is_hub_id

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast
from jaxrap.model.config import GPT2Config

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "flax_model.msgpack", "pytorch_model.bin")
_HUB_PATTERNS = ["config.json", "*.safetensors", "model.safetensors.index.json", "flax_model.msgpack",
                 "pytorch_model.bin", "tokenizer*", "vocab.json", "merges.txt", "special_tokens_map.json",
                 "generation_config.json"]
# Buffers older GPT-2 checkpoints carry (causal-mask constants), not weights.
_IGNORED = re.compile(r"(^|\.)attn\.(bias|masked_bias)$")
# torch.nn.Linear weights, stored (out, in); our kernels, like GPT-2's Conv1D weights, are (in, out).
_LINEAR_WEIGHTS = ("lm_head.weight",)


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


def hf_name(path: tuple) -> str:
    """Our params path ('h', 3, 'attn', 'c_attn', 'kernel') -> 'transformer.h.3.attn.c_attn.weight';
    an untied head's ('lm_head', 'kernel') -> 'lm_head.weight', outside the transformer."""
    *modules, leaf = (str(p) for p in path)
    if leaf in ("kernel", "embedding", "scale"):
        leaf = "weight"
    return ".".join([*([] if modules[:1] == ["lm_head"] else ["transformer"]), *modules, leaf])


def load_config(model_dir: str | Path) -> GPT2Config:
    config_path = Path(model_dir) / "config.json"
    if not config_path.is_file():
        raise JaxrapError(f"{model_dir}: no config.json; is this a Hugging Face model directory?")
    return GPT2Config.from_file(config_path)


def load_pretrained(name_or_path: str | Path) -> tuple[GPT2Config, dict[str, Any]]:
    """(config, float32 numpy params) from a model directory or hub id.

    Params are host numpy arrays in our pure-dict layout; the caller decides where they go
    (``jax.device_put`` with a sharding).
    """
    from jaxrap.model import gpt2

    model_dir = resolve_model_dir(name_or_path)
    config = load_config(model_dir)
    tensors = _read_hf_tensors(model_dir)  # HF name -> array, in PyTorch layout
    _, template = gpt2.abstract(config)
    return config, _fill(template, tensors, source=str(model_dir))


def _fill(template: Any, tensors: dict[str, np.ndarray], source: str, path: tuple = ()) -> Any:
    """Walk our params template and take each leaf from the HF tensors, checking shapes."""
    if isinstance(template, dict):
        return {key: _fill(value, tensors, source, (*path, key)) for key, value in template.items()}
    name = hf_name(path)
    if name not in tensors:
        untied = " (config.json sets tie_word_embeddings: false)" if name in _LINEAR_WEIGHTS else ""
        raise JaxrapError(f"{source}: checkpoint has no tensor {name}{untied} (is it a GPT-2 LM checkpoint?)")
    array = tensors[name]
    expected = tuple(template.shape)[::-1] if name in _LINEAR_WEIGHTS else tuple(template.shape)
    if tuple(array.shape) != expected:
        raise JaxrapError(f"{source}: tensor {name} has shape {tuple(array.shape)}, but config.json implies {expected}")
    return np.asarray(array.T if name in _LINEAR_WEIGHTS else array, dtype=np.float32)


def _read_hf_tensors(model_dir: Path) -> dict[str, np.ndarray]:
    """All weight tensors under their canonical PyTorch names ('transformer.' prefixed)."""
    if (model_dir / "model.safetensors").is_file():
        tensors = _read_safetensors([model_dir / "model.safetensors"])
    elif (model_dir / "model.safetensors.index.json").is_file():
        index = json.loads((model_dir / "model.safetensors.index.json").read_text())
        shards = sorted({model_dir / shard for shard in index["weight_map"].values()})
        tensors = _read_safetensors(shards)
    elif (model_dir / "flax_model.msgpack").is_file():
        tensors = _read_flax_msgpack(model_dir / "flax_model.msgpack")
    elif (model_dir / "pytorch_model.bin").is_file():
        tensors = _read_torch_bin(model_dir / "pytorch_model.bin")
    else:
        raise JaxrapError(
            f"{model_dir}: no weights found; expected one of {', '.join(WEIGHT_FILES)}"
        )
    canonical = {}
    for name, array in tensors.items():
        if not name.startswith(("transformer.", "lm_head.")):
            name = "transformer." + name  # GPT2Model checkpoints have no prefix
        if not _IGNORED.search(name):
            canonical[name] = array
    return canonical


def _read_safetensors(files: list[Path]) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError, safe_open

    tensors = {}
    for file in files:
        try:
            # The flax framework reads every dtype (bfloat16 included) as a jax array.
            with safe_open(file, framework="flax") as handle:
                for name in handle.keys():
                    tensors[name] = np.asarray(handle.get_tensor(name).astype("float32"))
        except (SafetensorError, OSError) as error:
            raise JaxrapError(f"{file}: unreadable safetensors file ({error})") from None
    return tensors


def _read_flax_msgpack(file: Path) -> dict[str, np.ndarray]:
    from flax import serialization

    try:
        tree = serialization.msgpack_restore(file.read_bytes())
    except Exception as error:  # noqa: BLE001 - msgpack raises several unrelated types
        raise JaxrapError(f"{file}: unreadable Flax msgpack ({type(error).__name__})") from None
    tree = tree.get("params", tree)
    tensors = {}

    def walk(node: Any, path: tuple) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
            return
        array = np.asarray(node, dtype=np.float32)
        if path[-1] == "kernel":
            # FlaxConv1D kernels are (out, in) where PyTorch's Conv1D is (in, out); the LM head's
            # nn.Dense kernel is (in, out) where nn.Linear is (out, in): both transpose.
            array = array.T
        tensors[hf_name(path[1:] if path[0] == "transformer" else path)] = array

    walk(tree, ())
    return tensors


def _read_torch_bin(file: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise JaxrapError(
            f"{file}: reading pytorch_model.bin needs torch (pip install torch), or convert the"
            " checkpoint to model.safetensors"
        ) from None
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle errors come in many types
        raise JaxrapError(f"{file}: unreadable PyTorch checkpoint ({type(error).__name__})") from None
    return {name: tensor.float().numpy() for name, tensor in state.items()}


def save_pretrained(
    out_dir: str | Path, config: GPT2Config, params: dict[str, Any], tokenizer: PreTrainedTokenizerFast | None = None
) -> Path:
    """Write config.json + model.safetensors (+ tokenizer files) for transformers to load."""
    import jax
    from safetensors.numpy import save_file

    if ("lm_head" in params) == config.tie_word_embeddings:
        raise JaxrapError(
            f"params {'with' if 'lm_head' in params else 'without'} an lm_head do not match"
            f" tie_word_embeddings: {str(config.tie_word_embeddings).lower()}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = hf_name(tuple(key.key for key in path))
        array = np.asarray(jax.device_get(leaf), dtype=np.float32)
        tensors[name] = np.ascontiguousarray(array.T if name in _LINEAR_WEIGHTS else array)
    save_file(dict(sorted(tensors.items())), out / "model.safetensors", metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config.to_hf_dict(), indent=2, sort_keys=True) + "\n")
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return out
