"""Reading a Hugging Face checkpoint's tensors one at a time.

``open_checkpoint(model_dir)`` returns a ``TensorFiles``: every tensor's name and shape, read
from the file headers alone (nothing is loaded), and ``read(name)``, which reads that one
tensor in its stored dtype. Safetensors files (``model.safetensors``, or the shards a
``model.safetensors.index.json`` lists) are read with positioned reads of the tensor's byte
range: no memory map, so the process holds at most the tensor being converted and what it
has already placed (the file's pages stay in the kernel's page cache, not in our RSS). The
legacy formats (``flax_model.msgpack``, ``pytorch_model.bin``) cannot be read a tensor at a
time and are loaded whole, as float32 in PyTorch's layout.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jaxrap.errors import JaxrapError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "flax_model.msgpack", "pytorch_model.bin")


def _safetensors_dtypes() -> dict[str, Any]:
    import ml_dtypes  # jax's own dependency: bfloat16 for numpy

    return {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
            "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


@dataclass
class TensorFiles:
    """Tensors by their checkpoint names: ``shapes`` from the headers, ``read`` one at a time."""

    shapes: dict[str, tuple[int, ...]]
    read: Callable[[str], np.ndarray]  # name -> the tensor as stored (its own dtype, PyTorch's layout)
    sources: dict[str, str] = field(default_factory=dict)  # name -> file, for messages


def open_checkpoint(model_dir: Path) -> TensorFiles:
    """The weights of a model directory, in the first of ``WEIGHT_FILES`` it has."""
    if (model_dir / "model.safetensors").is_file():
        return _safetensors([model_dir / "model.safetensors"])
    if (model_dir / "model.safetensors.index.json").is_file():
        index_file = model_dir / "model.safetensors.index.json"
        try:
            weight_map = json.loads(index_file.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise JaxrapError(f"{index_file}: not a safetensors index ({type(error).__name__}: no weight_map)") from None
        shards = sorted({model_dir / shard for shard in weight_map.values()})
        missing = [str(shard) for shard in shards if not shard.is_file()]
        if missing:
            raise JaxrapError(f"{index_file}: lists {len(missing)} missing shard(s), e.g. {missing[0]}")
        return _safetensors(shards)
    if (model_dir / "flax_model.msgpack").is_file():
        return _in_memory(_read_flax_msgpack(model_dir / "flax_model.msgpack"))
    if (model_dir / "pytorch_model.bin").is_file():
        return _in_memory(_read_torch_bin(model_dir / "pytorch_model.bin"))
    raise JaxrapError(f"{model_dir}: no weights found; expected one of {', '.join(WEIGHT_FILES)}")


def _safetensors(files: list[Path]) -> TensorFiles:
    """Headers of every file (8-byte little-endian header length, a JSON header of each
    tensor's dtype, shape and byte range, then the data), and a reader of one tensor."""
    dtypes = _safetensors_dtypes()
    entries: dict[str, tuple[Path, int, Any, tuple[int, ...], int]] = {}  # name -> (file, start, dtype, shape, bytes)
    for file in files:
        try:
            with open(file, "rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                if length > os.path.getsize(file):
                    raise ValueError("header longer than the file")
                header = json.loads(handle.read(length))
        except (OSError, struct.error, ValueError, UnicodeDecodeError) as error:
            raise JaxrapError(f"{file}: unreadable safetensors file ({type(error).__name__}: {error})".replace("\n", " ")) from None
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info["dtype"] not in dtypes:
                raise JaxrapError(f"{file}: tensor {name} has dtype {info['dtype']}, which jaxrap cannot read")
            begin, end = info["data_offsets"]
            entries[name] = (file, 8 + length + begin, dtypes[info["dtype"]], tuple(info["shape"]), end - begin)

    def read(name: str) -> np.ndarray:
        file, start, dtype, shape, size = entries[name]
        buffer = np.empty(size, np.uint8)
        view, done = buffer.data, 0
        with open(file, "rb", buffering=0) as handle:
            while done < size:
                got = os.preadv(handle.fileno(), [view[done:]], start + done)
                if got == 0:
                    raise JaxrapError(f"{file}: truncated safetensors file (tensor {name} ends past the file)")
                done += got
        return buffer.view(dtype).reshape(shape)

    return TensorFiles({name: entry[3] for name, entry in entries.items()}, read,
                       {name: str(entry[0]) for name, entry in entries.items()})


def _in_memory(tensors: dict[str, np.ndarray]) -> TensorFiles:
    return TensorFiles({name: tuple(array.shape) for name, array in tensors.items()}, tensors.__getitem__)


def _read_flax_msgpack(file: Path) -> dict[str, np.ndarray]:
    """transformers' former Flax layout: kernels (Flax's (in, out) Dense, or GPT-2's FlaxConv1D
    (out, in)) transposed to PyTorch's layout, under PyTorch's names."""
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
        *modules, leaf = (str(p) for p in path)
        tensors[".".join([*modules, "weight" if leaf in ("kernel", "embedding", "scale") else leaf])] = (
            array.T if leaf == "kernel" else array
        )

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
