"""GPT2Config: the architecture's hyper-parameters, named as Hugging Face names them.

Pure Python (no jax), so configs load, validate and print without starting XLA.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from jaxrap.errors import JaxrapError
from jaxrap.shape_rules import width_problem

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

# Activations Hugging Face GPT-2 checkpoints use (activation_function), and the function each
# names: the tanh approximation of GELU, the exact (erf) GELU, or ReLU (see gpt2.MLP).
ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh", "gelu": "gelu", "relu": "relu"}


@dataclasses.dataclass(frozen=True)
class GPT2Config:
    """GPT-2 shape and regularisation; defaults are GPT-2 small (124M), as in transformers."""

    vocab_size: int = 50257  # rows of the token embedding, outputs of the LM head
    n_positions: int = 1024  # longest context (rows of the learned position embedding)
    n_embd: int = 768  # width of the residual stream
    n_layer: int = 12  # transformer blocks
    n_head: int = 12  # attention heads; n_embd must divide by it
    n_inner: int | None = None  # MLP width; None means 4 * n_embd
    activation_function: str = "gelu_new"  # one of ACTIVATIONS
    resid_pdrop: float = 0.1  # dropout on each block's residual branches
    embd_pdrop: float = 0.1  # dropout on token + position embeddings
    attn_pdrop: float = 0.1  # dropout on attention probabilities
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02  # std of the normal init (c_proj scaled by 1/sqrt(2 n_layer))
    scale_attn_weights: bool = True  # divide attention scores by sqrt(head_dim)
    scale_attn_by_inverse_layer_idx: bool = False  # also divide by (layer index + 1)
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256
    pad_token_id: int | None = None
    tie_word_embeddings: bool = True  # the LM head is the token embedding (GPT-2); false: its own matrix

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise JaxrapError(f"GPT-2 config: {name} must be a positive integer, got {value!r}")
        problem = width_problem(self.n_embd, self.n_head)
        if problem:
            raise JaxrapError(f"GPT-2 config: n_embd {problem}")
        if self.activation_function not in ACTIVATIONS:
            raise JaxrapError(
                f"GPT-2 config: activation_function {self.activation_function!r} is not supported;"
                f" use one of {', '.join(ACTIVATIONS)}"
            )
        for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise JaxrapError(f"GPT-2 config: {name} must be in [0, 1), got {value!r}")
        if not isinstance(self.tie_word_embeddings, bool):
            raise JaxrapError(f"GPT-2 config: tie_word_embeddings must be true or false, got {self.tie_word_embeddings!r}")

    @property
    def model_type(self) -> str:
        return "gpt2"

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def n_kv_head(self) -> int:
        """Key/value heads: GPT-2 has one per query head."""
        return self.n_head

    @property
    def context_name(self) -> str:
        """Which field ``n_positions`` is, for messages."""
        return "n_positions"

    def describe(self) -> str:
        return f"GPT-2 {self.n_layer} layers x {self.n_embd} wide, {self.n_head} heads"

    @property
    def inner_dim(self) -> int:
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    def num_params(self) -> int:
        """Parameter count; an untied LM head adds its own (C, V) matrix."""
        d, inner = self.n_embd, self.inner_dim
        block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * inner + inner) + (inner * d + d)
        head = 0 if self.tie_word_embeddings else self.vocab_size * d
        return self.vocab_size * d + self.n_positions * d + self.n_layer * block + 2 * d + head

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token, forward and backward (PaLM, appendix B): 6N + 12 L d T.

        N counts every matmul weight; the tied token embedding counts once, as the LM head's
        matmul; the position embedding (and an untied token embedding) is a lookup and does not
        count.
        """
        lookups = self.n_positions if self.tie_word_embeddings else self.n_positions + self.vocab_size
        matmul_params = self.num_params() - lookups * self.n_embd
        return 6.0 * matmul_params + 12.0 * self.n_layer * self.n_embd * seq_len

    def replace(self, **changes: Any) -> GPT2Config:
        return dataclasses.replace(self, **changes)

    def for_tokenizer(self, tokenizer: PreTrainedTokenizerFast) -> GPT2Config:
        """This shape with the tokenizer's vocabulary size and special token ids."""
        eos = tokenizer.eos_token_id
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
        return self.replace(
            vocab_size=len(tokenizer), bos_token_id=bos, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id
        )

    # --- Hugging Face config.json -------------------------------------------------------
    @classmethod
    def from_hf_dict(cls, data: dict[str, Any], source: str = "config.json") -> GPT2Config:
        """Read the fields jaxrap uses from a transformers GPT2Config dict; refuse other models."""
        model_type = data.get("model_type", "gpt2")
        if model_type != "gpt2":
            raise JaxrapError(f"{source}: model_type is {model_type!r}, not gpt2")
        if data.get("add_cross_attention"):
            raise JaxrapError(f"{source}: cross-attention GPT-2 variants are not supported")
        values = {}
        for field in dataclasses.fields(cls):
            if field.name not in data:
                continue
            value = data[field.name]
            if field.type == "float" and not isinstance(value, bool):
                try:  # YAML 1.1 reads "1e-5" as a string
                    value = float(value)
                except (TypeError, ValueError):
                    raise JaxrapError(f"{source}: {field.name} must be a number, got {value!r}") from None
            values[field.name] = value
        return cls(**values)

    def to_hf_dict(self) -> dict[str, Any]:
        """A config.json that transformers' GPT2LMHeadModel.from_pretrained reads."""
        return {
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            **dataclasses.asdict(self),
        }
