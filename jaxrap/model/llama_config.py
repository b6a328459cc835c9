"""LlamaConfig: the hyper-parameters of a Llama-style decoder, named as Hugging Face names them.

One config covers the families that share Llama's block (``model_type`` ``llama``, ``mistral``,
``qwen2``, ``qwen3``); what differs between them is a few flags (``VARIANTS``): Qwen2 is Llama
with q/k/v biases (no output bias), Qwen3 adds an RMSNorm on each head's queries and keys,
Mistral has no bias flags, and each family's transformers class has its own defaults for the
fields a config.json leaves out.

RoPE is read in the three forms configs use: ``rope_theta`` with ``rope_scaling`` naming its
kind as ``type`` (older files) or ``rope_type``, and transformers v5's ``rope_parameters``
(``rope_type`` and ``rope_theta`` in one mapping). Scalings ``linear`` and ``llama3`` are
supported; ``default`` (or none) is plain RoPE.

Pure Python (no jax): configs load, validate and print without starting XLA.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from jaxrap.errors import JaxrapError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

ROPE_TYPES = ("default", "linear", "llama3")
LLAMA3_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")


@dataclasses.dataclass(frozen=True)
class Variant:
    """What one ``model_type`` changes in the shared block, and its transformers class's defaults."""

    architecture: str  # transformers' class for the model_type (config.json "architectures")
    name: str  # how messages name the family
    qkv_bias: bool = False  # q, k and v projections always have a bias (Qwen2), whatever attention_bias says
    qk_norm: bool = False  # RMSNorm over each head's queries and keys before RoPE (Qwen3)
    bias_fields: tuple[str, ...] = ()  # of attention_bias / mlp_bias, those config.json may set
    sliding_fields: tuple[str, ...] = ("sliding_window",)  # how config.json states a sliding window
    defaults: tuple[tuple[str, Any], ...] = ()  # transformers' defaults where they differ from Llama's


VARIANTS: dict[str, Variant] = {
    "llama": Variant("LlamaForCausalLM", "Llama", bias_fields=("attention_bias", "mlp_bias"), sliding_fields=()),
    "mistral": Variant(
        "MistralForCausalLM", "Mistral",
        defaults=(("intermediate_size", 14336), ("num_key_value_heads", 8), ("max_position_embeddings", 4096 * 32),
                  ("sliding_window", 4096)),
    ),
    "qwen2": Variant(
        "Qwen2ForCausalLM", "Qwen2", qkv_bias=True,
        sliding_fields=("use_sliding_window", "sliding_window", "max_window_layers"),
        defaults=(("vocab_size", 151936), ("intermediate_size", 22016), ("num_key_value_heads", 32),
                  ("max_position_embeddings", 32768), ("bos_token_id", None), ("eos_token_id", None)),
    ),
    "qwen3": Variant(
        "Qwen3ForCausalLM", "Qwen3", qk_norm=True, bias_fields=("attention_bias",),
        sliding_fields=("use_sliding_window", "sliding_window", "max_window_layers"),
        defaults=(("vocab_size", 151936), ("intermediate_size", 22016), ("num_key_value_heads", 32), ("head_dim", 128),
                  ("max_position_embeddings", 32768), ("bos_token_id", None), ("eos_token_id", None)),
    ),
}


@dataclasses.dataclass(frozen=True)
class RopeScaling:
    """A RoPE frequency scaling: ``linear`` divides every frequency by ``factor``; ``llama3``
    divides the low frequencies by it and blends the middle band (transformers'
    ``_compute_llama3_parameters``)."""

    rope_type: str  # "linear" or "llama3"
    factor: float
    low_freq_factor: float | None = None  # llama3 only, as the three below
    high_freq_factor: float | None = None
    original_max_position_embeddings: int | None = None

    def to_hf_dict(self) -> dict[str, Any]:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    """A Llama-style decoder's shape; defaults are transformers' LlamaConfig's (Llama 2 7B)."""

    model_type: str = "llama"  # one of VARIANTS: which flags and HF class apply
    vocab_size: int = 32000  # rows of the token embedding, outputs of the LM head
    hidden_size: int = 4096  # width of the residual stream
    intermediate_size: int = 11008  # SwiGLU width
    num_hidden_layers: int = 32
    num_attention_heads: int = 32  # query heads
    num_key_value_heads: int | None = None  # key/value heads (grouped-query attention); None: as many as query heads
    head_dim: int | None = None  # per-head width; None: hidden_size / num_attention_heads
    hidden_act: str = "silu"  # SwiGLU's gate activation; only silu is supported
    max_position_embeddings: int = 2048  # longest context the model was trained for
    initializer_range: float = 0.02  # std of the normal init of every matrix
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0  # RoPE base
    rope_scaling: RopeScaling | None = None  # None: plain RoPE
    attention_bias: bool = False  # biases on q, k, v and o (Llama, Qwen3)
    mlp_bias: bool = False  # biases on the SwiGLU's three projections (Llama)
    attention_dropout: float = 0.0  # dropout on attention probabilities while training
    sliding_window: int | None = None  # attention window of sliding layers; None: full attention
    max_window_layers: int | None = None  # Qwen: layers from this index on slide (as config.json gives it)
    tie_word_embeddings: bool = False  # the LM head is the token embedding (Llama 3.2, Qwen2.5 small); false: its own matrix
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    pad_token_id: int | None = None

    def __post_init__(self) -> None:
        name = f"{self.variant.name} config" if self.model_type in VARIANTS else "config"
        if self.model_type not in VARIANTS:
            raise JaxrapError(f"config: model_type {self.model_type!r} is not a Llama-style family ({', '.join(VARIANTS)})")
        for field in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                      "max_position_embeddings"):
            _positive(name, field, getattr(self, field))
        if self.num_key_value_heads is None:
            object.__setattr__(self, "num_key_value_heads", self.num_attention_heads)
        _positive(name, "num_key_value_heads", self.num_key_value_heads)
        if self.num_attention_heads % self.kv_heads:
            raise JaxrapError(
                f"{name}: num_attention_heads ({self.num_attention_heads}) must be a multiple of num_key_value_heads"
                f" ({self.kv_heads}): each key/value head serves a whole group of query heads"
            )
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise JaxrapError(
                    f"{name}: hidden_size ({self.hidden_size}) must be divisible by num_attention_heads"
                    f" ({self.num_attention_heads}), or head_dim must be given"
                )
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_attention_heads)
        _positive(name, "head_dim", self.head_dim)
        if self.dim_per_head % 2:
            raise JaxrapError(f"{name}: head_dim must be even (RoPE rotates pairs of dimensions), got {self.head_dim}")
        if self.hidden_act != "silu":
            raise JaxrapError(f"{name}: hidden_act {self.hidden_act!r} is not supported; Llama-style blocks use silu")
        if not 0.0 <= self.attention_dropout < 1.0:
            raise JaxrapError(f"{name}: attention_dropout must be in [0, 1), got {self.attention_dropout!r}")
        if self.sliding_window is not None:
            _positive(name, "sliding_window", self.sliding_window)
        if not isinstance(self.tie_word_embeddings, bool):
            raise JaxrapError(f"{name}: tie_word_embeddings must be true or false, got {self.tie_word_embeddings!r}")

    # --- what the model interface asks of every family ---------------------------------
    @property
    def variant(self) -> Variant:
        return VARIANTS[self.model_type]

    @property
    def kv_heads(self) -> int:
        assert self.num_key_value_heads is not None  # __post_init__ resolves None
        return self.num_key_value_heads

    @property
    def dim_per_head(self) -> int:
        assert self.head_dim is not None  # __post_init__ resolves None
        return self.head_dim

    @property
    def n_layer(self) -> int:
        return self.num_hidden_layers

    @property
    def n_kv_head(self) -> int:
        return self.kv_heads

    @property
    def n_positions(self) -> int:
        """The longest context jaxrap runs the model at: ``max_position_embeddings``, or the
        sliding window when it is shorter (within the window, sliding attention is full
        attention, so jaxrap never needs to implement the window itself)."""
        return min(self.max_position_embeddings, self.sliding_window or self.max_position_embeddings)

    @property
    def context_name(self) -> str:
        """Which field ``n_positions`` comes from, for messages."""
        if self.sliding_window is not None and self.sliding_window < self.max_position_embeddings:
            return "sliding_window"
        return "max_position_embeddings"

    @property
    def qkv_bias(self) -> bool:
        return self.attention_bias or self.variant.qkv_bias

    @property
    def o_bias(self) -> bool:
        return self.attention_bias

    def describe(self) -> str:
        heads = f"{self.num_attention_heads} heads" + (
            f" ({self.kv_heads} key/value)" if self.kv_heads != self.num_attention_heads else ""
        )
        return f"{self.variant.name} {self.num_hidden_layers} layers x {self.hidden_size} wide, {heads}"

    def num_params(self) -> int:
        """Parameter count; an untied LM head adds its own (C, V) matrix."""
        C, H, K, D, F = self.hidden_size, self.num_attention_heads, self.kv_heads, self.dim_per_head, self.intermediate_size
        attention = C * H * D + 2 * C * K * D + H * D * C
        attention += (H * D + 2 * K * D if self.qkv_bias else 0) + (C if self.o_bias else 0)
        attention += 2 * D if self.variant.qk_norm else 0
        mlp = 3 * C * F + (2 * F + C if self.mlp_bias else 0)
        block = attention + mlp + 2 * C
        head = 0 if self.tie_word_embeddings else self.vocab_size * C
        return self.vocab_size * C + self.num_hidden_layers * block + C + head

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token, forward and backward (PaLM, appendix B): 6N + 12 L H D T.

        N counts every matmul weight (the LM head once; an untied embedding is a lookup and
        does not count); the attention term uses the query heads' width H * D.
        """
        lookups = 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size
        width = self.num_attention_heads * self.dim_per_head
        return 6.0 * (self.num_params() - lookups) + 12.0 * self.num_hidden_layers * width * seq_len

    def replace(self, **changes: Any) -> LlamaConfig:
        return dataclasses.replace(self, **changes)

    def for_tokenizer(self, tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
        """This shape with the tokenizer's vocabulary size and special token ids."""
        eos = tokenizer.eos_token_id
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
        return self.replace(
            vocab_size=len(tokenizer), bos_token_id=bos, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id
        )

    # --- Hugging Face config.json -------------------------------------------------------
    @classmethod
    def from_hf_dict(cls, data: dict[str, Any], source: str = "config.json") -> LlamaConfig:
        """The fields jaxrap uses from a transformers config dict of a Llama-style model_type,
        with that class's defaults for the fields it leaves out."""
        model_type = data.get("model_type", "llama")
        variant = VARIANTS[model_type]
        values: dict[str, Any] = {"model_type": model_type, **dict(variant.defaults)}
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "initializer_range",
                     "rms_norm_eps", "attention_dropout", "tie_word_embeddings", "bos_token_id", "eos_token_id",
                     "pad_token_id", *variant.bias_fields):
            if name in data:
                values[name] = data[name]
        for name in ("rms_norm_eps", "initializer_range", "attention_dropout"):
            values[name] = _number(source, name, values.get(name, getattr(cls, name)))
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if isinstance(values.get(name), list):  # several end tokens (instruct models): the first
                values[name] = values[name][0] if values[name] else None
        if data.get("pretraining_tp", 1) not in (1, None):
            raise JaxrapError(f"{source}: pretraining_tp {data['pretraining_tp']} is not supported (only 1)")
        values["rope_theta"], values["rope_scaling"] = read_rope(data, source)
        values["sliding_window"], values["max_window_layers"] = _read_sliding_window(data, variant, values, source)
        try:
            return cls(**values)
        except JaxrapError as error:
            raise JaxrapError(f"{source}: {error}") from None

    def to_hf_dict(self) -> dict[str, Any]:
        """A config.json that transformers' class for ``model_type`` reads (RoPE in v5's
        ``rope_parameters`` form)."""
        variant = self.variant
        data: dict[str, Any] = {"architectures": [variant.architecture], "model_type": self.model_type}
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "initializer_range",
                     "rms_norm_eps", "attention_dropout", "tie_word_embeddings", "bos_token_id", "eos_token_id",
                     "pad_token_id", *variant.bias_fields):
            data[name] = getattr(self, name)
        rope = {"rope_type": "default", "rope_theta": self.rope_theta}
        if self.rope_scaling is not None:
            rope = {**self.rope_scaling.to_hf_dict(), "rope_theta": self.rope_theta}
        data["rope_parameters"] = rope
        if "use_sliding_window" in variant.sliding_fields:
            data["use_sliding_window"] = self.sliding_window is not None
            data["sliding_window"] = self.sliding_window
            data["max_window_layers"] = self.max_window_layers if self.max_window_layers is not None else 0
        elif variant.sliding_fields:
            data["sliding_window"] = self.sliding_window
        return data


def read_rope(data: dict[str, Any], source: str) -> tuple[float, RopeScaling | None]:
    """(theta, scaling) from any of the three forms (module docstring). An unknown scaling type
    is refused naming the supported ones."""
    for key in ("rope_scaling", "rope_parameters"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise JaxrapError(f"{source}: {key} must be a mapping or null, got {data[key]!r}")
    # As transformers reads them: rope_scaling, when set, wins over rope_parameters.
    scaling = data.get("rope_scaling") or data.get("rope_parameters") or {}
    if any(key in scaling for key in ("full_attention", "sliding_attention")):
        raise JaxrapError(f"{source}: per-layer RoPE parameters are not supported")
    theta = _number(source, "rope_theta", scaling.get("rope_theta", data.get("rope_theta", 10000.0)))
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type not in ROPE_TYPES:
        raise JaxrapError(
            f"{source}: RoPE scaling type {rope_type!r} is not supported; jaxrap supports"
            f" {', '.join(ROPE_TYPES)} (none)"
        )
    if scaling.get("partial_rotary_factor", data.get("partial_rotary_factor", 1.0)) != 1.0:
        raise JaxrapError(f"{source}: partial_rotary_factor is not supported (RoPE over the whole head only)")
    if rope_type == "default":
        return theta, None
    factor = _number(source, "rope factor", scaling.get("factor"))
    if factor <= 0:
        raise JaxrapError(f"{source}: the RoPE scaling factor must be positive, got {factor}")
    if rope_type == "linear":
        return theta, RopeScaling("linear", factor)
    missing = [key for key in LLAMA3_KEYS if key != "original_max_position_embeddings" and key not in scaling]
    if missing:
        raise JaxrapError(f"{source}: llama3 RoPE scaling needs {', '.join(missing)}")
    original = scaling.get("original_max_position_embeddings", data.get("max_position_embeddings", 2048))
    low = _number(source, "low_freq_factor", scaling["low_freq_factor"])
    high = _number(source, "high_freq_factor", scaling["high_freq_factor"])
    if high <= low:
        raise JaxrapError(f"{source}: llama3 RoPE scaling needs high_freq_factor > low_freq_factor, got {high} and {low}")
    return theta, RopeScaling("llama3", factor, low, high, int(original))


def _read_sliding_window(data: dict[str, Any], variant: Variant, values: dict[str, Any], source: str) -> tuple[int | None, int | None]:
    """(window or None, Qwen's max_window_layers or None) as the family's transformers class reads them."""
    if not variant.sliding_fields:
        return None, None
    window = data.get("sliding_window", values.get("sliding_window"))
    if "use_sliding_window" not in variant.sliding_fields:
        return window, None
    layers = data.get("max_window_layers", 28)
    layer_types = data.get("layer_types")
    if not data.get("use_sliding_window", False) or window is None:
        return None, layers
    sliding = "sliding_attention" in layer_types if layer_types else layers < values.get("num_hidden_layers", 32)
    return (window if sliding else None), layers


def _positive(name: str, field: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise JaxrapError(f"{name}: {field} must be a positive integer, got {value!r}")


def _number(source: str, name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise JaxrapError(f"{source}: {name} must be a number, got {value!r}")
    try:  # YAML 1.1 reads "1e-5" as a string
        return float(value)
    except (TypeError, ValueError):
        raise JaxrapError(f"{source}: {name} must be a number, got {value!r}") from None
