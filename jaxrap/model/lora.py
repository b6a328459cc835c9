"""LoRA (Hu et al., 2021): trainable low-rank updates over a frozen pretrained network.

Each adapted linear layer, kernel W (in, out), gains A (in, r) and B (r, out) and computes

    y = x W + b + (alpha / r) * dropout(x) A B

with A drawn uniform in ±1/sqrt(in) and B zero, so that the adapted network starts as the base
network. Which layers: ``select_targets`` (HF module names or a regex, as PEFT's
``target_modules``). The artist tokens a run adds to the tokenizer (``new_ids``) need rows the
base never learned: their embedding rows (and an untied head's columns) are trainable too, as
``new_rows`` (n, C) and ``new_columns`` (C, n); the base's rows at those ids are never read.

The adapted network is the family's own network with those modules swapped (``abstract``):
its params are the base's (same paths, same HF names) plus the leaves named in ``TRAINABLE``,
and ``jaxrap.model.partition`` splits them into what the optimizer trains and the frozen base.
Applied at run time, the base kernels get no gradient (no (in, out) weight gradient is ever
formed) and need no optimizer state. ``merge`` folds everything back into a plain network's
params (inside jit) for sampling, evaluation and the merged export; ``jaxrap.model.peft_adapter``
writes the adapters for PEFT.

Shapes: B batch, T tokens, C width, V vocab, r rank, n new tokens.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrap.errors import JaxrapError
from jaxrap.model import lm
from jaxrap.model.hf_names import layout
from jaxrap.model.registry import LMConfig
from jaxrap.model.xla_cpu import gradient_boundary

Params = dict[Any, Any]
LORA_A, LORA_B, NEW_ROWS, NEW_COLUMNS = "lora_a", "lora_b", "new_rows", "new_columns"
TRAINABLE = (LORA_A, LORA_B, NEW_ROWS, NEW_COLUMNS)  # the leaves the optimizer sees; all others are the frozen base
_INIT_STREAM = 0x4C6F5241  # folded into the run's seed for A's draws, apart from the dropout keys
_DROPOUT_STREAM = 1 << 20  # folded into the step's dropout key, past the network's own sites (3, 16 + layer)


@dataclasses.dataclass(frozen=True)
class Target:
    """A linear layer LoRA can adapt."""

    path: tuple  # params path of the module: ('h', 0, 'attn', 'c_attn')
    name: str  # its Hugging Face module name: 'transformer.h.0.attn.c_attn'
    shape: tuple[int, int]  # its kernel, (in, out)

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


@dataclasses.dataclass(frozen=True)
class LoraSpec:
    """What a LoRA network adapts and how: hashable, so jitted programs are cached per spec."""

    rank: int
    alpha: float
    dropout: float
    modules: tuple[tuple, ...]  # params paths of the adapted linear layers, in network order
    new_ids: tuple[int, ...] = ()  # token ids whose embedding rows (and untied head columns) train

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def record(self, config: LMConfig) -> dict[str, Any]:
        """JSON of the spec, modules by HF name (what checkpoints keep; ``from_record``)."""
        names = {target.path: target.name for target in linear_layers(config)}
        return {"rank": self.rank, "alpha": self.alpha, "dropout": self.dropout,
                "modules": [names[path] for path in self.modules], "new_ids": list(self.new_ids)}

    @classmethod
    def from_record(cls, config: LMConfig, record: dict[str, Any]) -> LoraSpec:
        paths = {target.name: target.path for target in linear_layers(config)}
        missing = [name for name in record["modules"] if name not in paths]
        if missing:
            raise JaxrapError(f"the adapters name {missing[0]}, which {config.describe()} does not have")
        return cls(int(record["rank"]), float(record["alpha"]), float(record["dropout"]),
                   tuple(paths[name] for name in record["modules"]), tuple(int(i) for i in record["new_ids"]))


@functools.lru_cache(maxsize=16)
def linear_layers(config: LMConfig) -> tuple[Target, ...]:
    """Every linear layer of the blocks (not the LM head), in network order."""
    network = nnx.eval_shape(lambda: lm.network_class(config)(config, rngs=nnx.Rngs(0)))
    names = layout(config)
    return tuple(
        Target(path, names.name((*path, "kernel")).removesuffix(".weight"), (int(node.kernel.shape[0]), int(node.kernel.shape[1])))
        for path, node in nnx.iter_graph(network)
        if isinstance(node, nnx.Linear) and path[0] != "lm_head"
    )


def select_targets(config: LMConfig, targets: str | Sequence[str] | None, rank: int) -> tuple[Target, ...]:
    """The linear layers ``targets`` names: None, all of them; a list, each HF module name or
    its last part (PEFT's list form: ``c_attn``, ``layers.0.self_attn.q_proj``); a string, a regex
    matched in full against each layer's last name or whole name. A name or regex that matches
    nothing, or a rank above a chosen layer's smaller side, is a JaxrapError."""
    layers = linear_layers(config)
    known = ", ".join(dict.fromkeys(target.short_name for target in layers))

    def nothing(what: str) -> JaxrapError:
        return JaxrapError(
            f"model.lora.targets: {what} matches no linear layer of {config.describe()}; its linear layers are"
            f" {known} (e.g. {layers[0].name})"
        )

    if targets is None:
        chosen = layers
    elif isinstance(targets, str):
        pattern = re.compile(targets)
        chosen = tuple(t for t in layers if pattern.fullmatch(t.short_name) or pattern.fullmatch(t.name))
        if not chosen:
            raise nothing(repr(targets))
    else:
        for name in targets:
            if not any(_names(t, name) for t in layers):
                raise nothing(repr(name))
        chosen = tuple(t for t in layers if any(_names(t, name) for name in targets))
    narrowest = min(chosen, key=lambda t: min(t.shape))
    if rank > min(narrowest.shape):
        raise JaxrapError(
            f"model.lora.rank: {rank} is above the smaller side of {narrowest.name} ({narrowest.shape[0]} x"
            f" {narrowest.shape[1]}); use at most {min(narrowest.shape)}"
        )
    return chosen


def _names(target: Target, name: str) -> bool:
    return target.name == name or target.name.endswith("." + name)


def make_spec(
    config: LMConfig, *, rank: int, alpha: float, dropout: float, targets: str | Sequence[str] | None,
    new_ids: Sequence[int] = (),
) -> LoraSpec:
    chosen = select_targets(config, targets, rank)
    return LoraSpec(rank, float(alpha), float(dropout), tuple(t.path for t in chosen), tuple(sorted(new_ids)))


class LoRALinear(nnx.Linear):
    """A linear layer (the base's kernel and bias, frozen) plus its low-rank update."""

    def __init__(self, base: nnx.Linear, spec: LoraSpec, *, rngs: nnx.Rngs):
        super().__init__(
            base.in_features, base.out_features, use_bias=base.use_bias, dtype=base.dtype, param_dtype=base.param_dtype,
            precision=base.precision, dot_general=base.dot_general, promote_dtype=base.promote_dtype,
            preferred_element_type=base.preferred_element_type, rngs=rngs,
        )
        self.lora_a = nnx.Param(jnp.zeros((base.in_features, spec.rank), jnp.float32))
        self.lora_b = nnx.Param(jnp.zeros((spec.rank, base.out_features), jnp.float32))
        self.scale = spec.scale
        self.dropout = nnx.Dropout(spec.dropout)
        # Set on each call's copy of the network by make_forward's forward; None: no dropout.
        self.dropout_key: jax.Array | None = nnx.data(None)

    def __call__(self, inputs: jax.Array, out_sharding: Any = None) -> jax.Array:
        y = super().__call__(inputs)  # (B, T, out): the base layer, exactly as nnx.Linear computes it
        x, a, b = self.promote_dtype((inputs, self.lora_a[...], self.lora_b[...]), dtype=self.dtype)
        if self.dropout_key is not None and self.dropout.rate > 0.0:
            x = self.dropout(x, deterministic=False, rngs=self.dropout_key)
        # The output's gradient feeds three dots (the base's input gradient, B's, and the low-rank
        # path's); gradient_boundary makes XLA:CPU compute it once instead of fusing it into each
        # (the tiny shape's LoRA backward: 1.17 s -> 0.92 s, full fine-tuning's 1.01 s).
        return gradient_boundary(y + (x @ a @ b) * jnp.asarray(self.scale, y.dtype))  # (B, T, r) in between


class GrownEmbed(nnx.Embed):
    """A frozen token embedding whose rows ``new_ids`` are the trainable ``new_rows`` (n, C);
    ``attend`` (a tied LM head) takes those columns from them too."""

    def __init__(self, base: nnx.Embed, new_ids: tuple[int, ...], *, rngs: nnx.Rngs):
        super().__init__(base.num_embeddings, base.features, dtype=base.dtype, param_dtype=base.param_dtype,
                         promote_dtype=base.promote_dtype, rngs=rngs)
        self.new_rows = nnx.Param(jnp.zeros((len(new_ids), base.features), jnp.float32))
        self.new_ids = new_ids

    def __call__(self, inputs: jax.Array, out_sharding: Any = None) -> jax.Array:
        rows = super().__call__(inputs)  # (B, T, C)
        slots = jnp.asarray(_slots(self.num_embeddings, self.new_ids))[inputs]  # (B, T): index in new_rows, or -1
        (new_rows,) = self.promote_dtype((self.new_rows[...],), dtype=self.dtype, inexact=False)
        new = jnp.take(new_rows, jnp.maximum(slots, 0), axis=0)  # (B, T, C)
        return jnp.where((slots >= 0)[..., None], new, rows)

    def attend(self, query: jax.Array, out_sharding: Any = None) -> jax.Array:
        logits = super().attend(query)  # (..., V)
        query, new_rows = self.promote_dtype((query, self.new_rows[...]), dtype=self.dtype)
        return logits.at[..., jnp.asarray(self.new_ids)].set(jnp.dot(query, new_rows.T))  # (..., n) written in


class GrownHead(nnx.Linear):
    """A frozen untied LM head (C, V) whose columns ``new_ids`` are the trainable ``new_columns`` (C, n)."""

    def __init__(self, base: nnx.Linear, new_ids: tuple[int, ...], *, rngs: nnx.Rngs):
        super().__init__(base.in_features, base.out_features, use_bias=False, dtype=base.dtype, param_dtype=base.param_dtype,
                         precision=base.precision, dot_general=base.dot_general, promote_dtype=base.promote_dtype,
                         preferred_element_type=base.preferred_element_type, rngs=rngs)
        self.new_columns = nnx.Param(jnp.zeros((base.in_features, len(new_ids)), jnp.float32))
        self.new_ids = new_ids

    def __call__(self, inputs: jax.Array, out_sharding: Any = None) -> jax.Array:
        logits = super().__call__(inputs)  # (..., V)
        x, columns = self.promote_dtype((inputs, self.new_columns[...]), dtype=self.dtype)
        return logits.at[..., jnp.asarray(self.new_ids)].set(x @ columns)  # (..., n) written in


@functools.lru_cache(maxsize=8)
def _slots(vocab_size: int, new_ids: tuple[int, ...]) -> np.ndarray:
    """(V,) int32: each new id's row in new_rows, -1 for the other tokens."""
    slots = np.full(vocab_size, -1, np.int32)
    slots[list(new_ids)] = np.arange(len(new_ids), dtype=np.int32)
    return slots


def _with_adapters(config: LMConfig, network: nnx.Module, spec: LoraSpec) -> nnx.Module:
    """``network`` with each adapted layer, and the embedding and untied head when tokens are
    new, swapped for their LoRA modules (in place)."""
    rngs = nnx.Rngs(0)  # the swapped modules' own init is never used: built under eval_shape
    for path in spec.modules:
        _replace(network, path, LoRALinear(_module(network, path), spec, rngs=rngs))
    if spec.new_ids:
        embedding = layout(config).token_embedding[:1]
        _replace(network, embedding, GrownEmbed(_module(network, embedding), spec.new_ids, rngs=rngs))
        head = getattr(network, "lm_head", None)  # an untied head; None when tied to the embedding
        if head is not None:
            _replace(network, ("lm_head",), GrownHead(head, spec.new_ids, rngs=rngs))
    return network


def _module(network: Any, path: tuple) -> Any:
    for key in path:
        network = network[key] if isinstance(key, int) else getattr(network, key)
    return network


def _replace(network: Any, path: tuple, module: nnx.Module) -> None:
    parent = _module(network, path[:-1])
    if isinstance(path[-1], int):
        parent[path[-1]] = module
    else:
        setattr(parent, path[-1], module)


def abstract(config: LMConfig, spec: LoraSpec, *, dtype: Any = jnp.float32, remat: bool = False) -> tuple[nnx.GraphDef, Params]:
    """graphdef and ShapeDtypeStruct params (float32) of the adapted network: the base's leaves
    plus ``TRAINABLE`` ones; no weight is allocated."""
    network = nnx.eval_shape(
        lambda: _with_adapters(config, lm.network_class(config)(config, dtype=dtype, remat=remat, rngs=nnx.Rngs(0)), spec)
    )
    graphdef, state = nnx.split(network)
    return graphdef, nnx.to_pure_dict(state)


def is_trainable(path: tuple) -> bool:
    return str(path[-1]) in TRAINABLE


def make_forward(config: LMConfig, spec: LoraSpec, dtype: str = "float32", *, remat: bool = False) -> lm.Forward:
    """``forward(params, input_ids (B, T), dropout_key or None) -> logits (B, T, V)`` of the
    adapted network, ``params`` being its trainable and frozen parts joined. Each adapted layer
    drops its input out with its own key, folded from the step's."""
    graphdef, _ = abstract(config, spec, dtype=jnp.dtype(dtype), remat=remat)

    def logits(params: Params, input_ids: jax.Array, dropout_key: jax.Array | None) -> jax.Array:
        network = nnx.merge(graphdef, params)
        if dropout_key is not None and spec.dropout > 0.0:
            for index, path in enumerate(spec.modules):
                _module(network, path).dropout_key = jax.random.fold_in(dropout_key, _DROPOUT_STREAM + index)
        return network(input_ids, dropout_key=dropout_key)[0]

    return logits


def init_trainable(config: LMConfig, spec: LoraSpec, frozen: Params, *, seed: int, shardings: Any = None) -> Params:
    """The trainable leaves at step 0: each A uniform in ±1/sqrt(in) (PEFT's default, Kaiming's
    uniform with a = sqrt(5)), each B zero, and the new tokens' rows and columns copied from the
    frozen base's (grown) embedding and head. Computed on the devices, placed on ``shardings``."""
    module, leaf = layout(config).token_embedding
    ids = np.asarray(spec.new_ids, np.int32)

    def init(frozen: Params) -> Params:
        key = jax.random.fold_in(jax.random.PRNGKey(seed), _INIT_STREAM)
        tree: Params = {}
        for index, path in enumerate(spec.modules):
            d_in, d_out = at_path(frozen, (*path, "kernel")).shape
            bound = 1.0 / math.sqrt(d_in)
            draw = jax.random.fold_in(key, index)
            set_at_path(tree, (*path, LORA_A), jax.random.uniform(draw, (d_in, spec.rank), jnp.float32, -bound, bound))
            set_at_path(tree, (*path, LORA_B), jnp.zeros((spec.rank, d_out), jnp.float32))
        if spec.new_ids:
            set_at_path(tree, (module, NEW_ROWS), frozen[module][leaf][ids].astype(jnp.float32))  # (n, C)
            if "lm_head" in frozen:
                set_at_path(tree, ("lm_head", NEW_COLUMNS), frozen["lm_head"]["kernel"][:, ids].astype(jnp.float32))  # (C, n)
        return tree

    return jax.jit(init, out_shardings=shardings)(frozen)


def merge(config: LMConfig, spec: LoraSpec, params: Params) -> Params:
    """The plain network's float32 params (``lm``'s layout) from the adapted network's: each
    adapted kernel W + (alpha / r) A B, the new rows and columns written into the embedding and
    head. Pure: jit it (``merged``)."""
    merged = jax.tree.map(lambda leaf: jnp.asarray(leaf, jnp.float32), params)
    for path in spec.modules:
        layer = dict(at_path(merged, path))
        update = jnp.matmul(layer.pop(LORA_A), layer.pop(LORA_B), precision=jax.lax.Precision.HIGHEST)  # (in, out)
        layer["kernel"] = layer["kernel"] + spec.scale * update
        set_at_path(merged, path, layer)
    if spec.new_ids:
        ids = jnp.asarray(spec.new_ids)
        module, leaf = layout(config).token_embedding
        embedding = dict(merged[module])
        embedding[leaf] = embedding[leaf].at[ids].set(embedding.pop(NEW_ROWS))
        merged[module] = embedding
        if "lm_head" in merged:
            head = dict(merged["lm_head"])
            head["kernel"] = head["kernel"].at[:, ids].set(head.pop(NEW_COLUMNS))
            merged["lm_head"] = head
    return merged


def merged(config: LMConfig, spec: LoraSpec, params: Params) -> Params:
    """``merge`` run once inside jit (on the default device), as host float32 arrays."""
    return jax.device_get(jax.jit(functools.partial(merge, config, spec))(params))


def base_fingerprint(config: LMConfig, tensor_shapes: dict[str, tuple[int, ...]]) -> str:
    """16 hex digits of SHA-256 over a base model's config (the fields jaxrap reads, so a
    re-save by another transformers version keeps it) and its tensors' names and shapes: what
    ties adapters to the base they were trained on."""
    described = {"config": config.to_hf_dict(), "tensors": sorted([name, list(shape)] for name, shape in tensor_shapes.items())}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def checkpoint_fingerprint(model_dir: str | Path) -> str:
    """``base_fingerprint`` of a Hugging Face model directory, read from config.json and the
    weight files' headers (no weight is read for safetensors)."""
    from jaxrap.model import hf
    from jaxrap.model.tensor_files import open_checkpoint

    model_dir = Path(model_dir)
    return base_fingerprint(hf.load_config(model_dir), open_checkpoint(model_dir).shapes)


def at_path(tree: Params, path: tuple) -> Any:
    """The subtree (or leaf) of a nested params dict at ``path``."""
    for key in path:
        tree = tree[key]
    return tree


def set_at_path(tree: Params, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value
