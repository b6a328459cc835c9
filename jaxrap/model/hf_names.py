"""How each family's params map to its Hugging Face checkpoint: a name map plus one per-tensor
transform (a transpose), as Levanter's ``HFCheckpointConverter`` frames it.

Our params mirror HF's module names (``jaxrap.model.gpt2``, ``jaxrap.model.llama``), so a
leaf's HF name is its path joined with dots, ``kernel`` / ``embedding`` / ``scale`` read as
``weight``, under the checkpoint's base-model prefix (``transformer.``, ``model.``) except the
LM head. GPT-2's Conv1D weights are stored (in, out) like our kernels, so only its untied LM
head (an nn.Linear) is transposed; every Llama-style kernel is an nn.Linear, stored (out, in).
Pure Python: the loader checks a checkpoint's names and shapes before reading a weight.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from jaxrap.model.registry import MODULES

if TYPE_CHECKING:
    from jaxrap.model.registry import LMConfig

_LEAVES = {"kernel": "weight", "embedding": "weight", "scale": "weight"}


@dataclasses.dataclass(frozen=True)
class CheckpointLayout:
    family: str  # how messages name the checkpoints ("GPT-2", "Llama-style")
    prefix: str  # the base model's prefix of every name but the LM head's
    ignored: re.Pattern  # names of buffers some checkpoints carry that are not weights
    transpose_all_kernels: bool  # nn.Linear kernels, stored (out, in); else only the LM head's
    token_embedding: tuple[str, str]  # params path of the (V, C) token embedding

    def name(self, path: tuple) -> str:
        """Our params path ('h', 3, 'attn', 'c_attn', 'kernel') -> 'transformer.h.3.attn.c_attn.weight'."""
        *modules, leaf = (str(p) for p in path)
        base = [] if modules[:1] == ["lm_head"] else [self.prefix.rstrip(".")]
        return ".".join([*base, *modules, _LEAVES.get(leaf, leaf)])

    def transposed(self, path: tuple) -> bool:
        """Whether the checkpoint stores this leaf transposed (torch's (out, in) against our (in, out))."""
        return str(path[-1]) == "kernel" and (self.transpose_all_kernels or str(path[0]) == "lm_head")

    def canonical(self, name: str) -> str | None:
        """A checkpoint's tensor name with the base prefix (checkpoints of the bare base model
        lack it), or None for a buffer that is not a weight."""
        if self.ignored.search(name):
            return None
        return name if name.startswith((self.prefix, "lm_head.")) else self.prefix + name


LAYOUTS = {
    "gpt2": CheckpointLayout(
        family="GPT-2",
        prefix="transformer.",
        ignored=re.compile(r"(^|\.)attn\.(bias|masked_bias)$"),  # causal-mask constants of older checkpoints
        transpose_all_kernels=False,
        token_embedding=("wte", "embedding"),
    ),
    "llama": CheckpointLayout(
        family="Llama-style",
        prefix="model.",
        ignored=re.compile(r"\.rotary_emb\.inv_freq$"),  # RoPE's inverse frequencies, recomputed
        transpose_all_kernels=True,
        token_embedding=("embed_tokens", "embedding"),
    ),
}


def layout(config: LMConfig) -> CheckpointLayout:
    return LAYOUTS[MODULES[config.model_type]]
