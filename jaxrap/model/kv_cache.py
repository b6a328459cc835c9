"""The key/value cache every family decodes with (``jaxrap.model.attention`` attends over it).

Shapes: B batch, S key/value slots, K key/value heads (fewer than the query heads with
grouped-query attention), D head dim, L layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from flax import struct

if TYPE_CHECKING:
    from jaxrap.model.registry import LMConfig


@struct.dataclass
class KVCache:
    """Static-shape key/value cache for decoding; one slot per position of the context. It
    holds the key/value heads only: with grouped-query attention, K < H.

    Laid out for decoding a token at a time on a CPU, where XLA copies any operand a matmul
    cannot read in place: one buffer per layer (a slice of a stacked (L, ...) array is a
    copy), batch and heads merged into the matmul batch dimension (with separate B and K
    dimensions XLA copies the updated cache to reshape it), slots last for the keys, so the G
    queries of a key/value head attend with two plain batched matmuls, q (G*T, D) @ keys
    (D, S) and probs (G*T, S) @ values (S, D), and each step updates the buffers in place
    (faster than a stacked (L, B, S, H, D) cache; README, Benchmarks — sampling). Attention
    reads all S slots, the unused ones masked: choosing a shorter prefix with ``lax.switch``
    made XLA copy the cache into the branches, which was slower.
    """

    keys: tuple[jax.Array, ...]  # L x (B*K, D, S)
    values: tuple[jax.Array, ...]  # L x (B*K, S, D)
    mask: jax.Array  # (B, S) bool: slot holds a real token (not padding, not yet written)
    index: jax.Array  # () int32: next slot to write, shared by the batch

    @classmethod
    def empty(cls, config: LMConfig, batch: int, length: int, dtype: Any = jnp.float32) -> KVCache:
        heads, D = batch * config.n_kv_head, config.head_dim
        return cls(
            keys=tuple(jnp.zeros((heads, D, length), dtype) for _ in range(config.n_layer)),
            values=tuple(jnp.zeros((heads, length, D), dtype) for _ in range(config.n_layer)),
            mask=jnp.zeros((batch, length), bool),
            index=jnp.zeros((), jnp.int32),
        )

    def grow(self, copies: int, length: int) -> KVCache:
        """This cache of G rows and P slots as ``copies`` copies of its rows (row r of the result
        is row r % G: copy-major, the G rows innermost), of ``length`` slots, the new slots
        empty: a prompt is prefilled once for all its samples (G = 1), or once per guidance
        branch for all the samples' pairs (G = 2), over its own slots only."""
        GH, D, P = self.keys[0].shape

        def rows(x):  # (G*H, ...) or (G, P) -> copies of them, (copies*G*H, ...) or (copies*G, P)
            return jnp.broadcast_to(x[None], (copies, *x.shape)).reshape(copies * x.shape[0], *x.shape[1:])

        return self.replace(  # type: ignore[attr-defined]  # flax.struct adds replace()
            keys=tuple(jnp.zeros((copies * GH, D, length), k.dtype).at[..., :P].set(rows(k)) for k in self.keys),
            values=tuple(jnp.zeros((copies * GH, length, D), v.dtype).at[:, :P].set(rows(v)) for v in self.values),
            mask=jnp.zeros((copies * self.mask.shape[0], length), bool).at[:, :P].set(rows(self.mask)),
        )
