"""A LoRA run's adapters in PEFT's format: what ``peft.PeftModel.from_pretrained`` loads onto
transformers' base model.

``adapter_config.json`` says LoRA, the rank, alpha, dropout and ``target_modules`` by HF module
name; ``adapter_model.safetensors`` holds, per adapted module ``M``,
``base_model.model.M.lora_A.weight`` (r, in) and ``base_model.model.M.lora_B.weight`` (out, r):
our A (in, r) and B (r, out) transposed, whatever the layer's own layout (GPT-2's Conv1D keeps
``fan_in_fan_out: true``, which PEFT reads for merging only). The artist tokens' rows go in as
PEFT's trainable tokens (``trainable_token_indices``): ``...wte.token_adapter.trainable_tokens_delta``
(n, C) holds the rows themselves, and an untied head's columns likewise under ``lm_head``; PEFT
ties the tied head to the embedding's. Their base must first be resized to the tokenizer
(``resize_token_embeddings(len(tokenizer))``, as docs/lora.md shows): the delta replaces the
rows it names, whatever the resize put there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from jaxrap.model.hf_names import layout
from jaxrap.model.lora import LORA_A, LORA_B, NEW_COLUMNS, NEW_ROWS, LoraSpec, at_path, linear_layers
from jaxrap.model.registry import LMConfig

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PREFIX = "base_model.model."  # PeftModel's own path to transformers' model


def target_modules(config: LMConfig, spec: LoraSpec) -> list[str]:
    """PEFT's ``target_modules`` for the adapted layers: their last names (``q_proj``) when
    those name exactly the adapted layers, else every adapted layer's full name."""
    layers = linear_layers(config)
    chosen = [target for target in layers if target.path in set(spec.modules)]
    short = sorted({target.short_name for target in chosen})
    if {target.path for target in layers if target.short_name in short} == set(spec.modules):
        return short
    return [target.name for target in chosen]


def save_peft_adapter(out_dir: str | Path, config: LMConfig, spec: LoraSpec, params: dict[str, Any], *, base: str) -> Path:
    """Write ``spec``'s trained ``params`` (the adapters' tree, ``lora``'s layout) as a PEFT
    adapter of ``base`` (``base_model_name_or_path``) into ``out_dir``."""
    import jax
    from safetensors.numpy import save_file

    host = jax.device_get(params)
    names = {target.path: target.name for target in linear_layers(config)}
    tensors: dict[str, np.ndarray] = {}
    for path in spec.modules:
        layer = at_path(host, path)
        tensors[f"{PREFIX}{names[path]}.lora_A.weight"] = np.ascontiguousarray(np.asarray(layer[LORA_A], np.float32).T)
        tensors[f"{PREFIX}{names[path]}.lora_B.weight"] = np.ascontiguousarray(np.asarray(layer[LORA_B], np.float32).T)
    checkpoint = layout(config)
    token_indices = None
    if spec.new_ids:
        module, _ = checkpoint.token_embedding
        embedding_name = checkpoint.name((module, "embedding")).removesuffix(".weight")
        tensors[f"{PREFIX}{embedding_name}.token_adapter.trainable_tokens_delta"] = np.asarray(host[module][NEW_ROWS], np.float32)
        token_indices = {module: list(spec.new_ids)}
        if "lm_head" in host:
            columns = np.asarray(host["lm_head"][NEW_COLUMNS], np.float32)  # (C, n)
            tensors[f"{PREFIX}lm_head.token_adapter.trainable_tokens_delta"] = np.ascontiguousarray(columns.T)
            token_indices["lm_head"] = list(spec.new_ids)
    adapter_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base,
        "r": spec.rank,
        "lora_alpha": spec.alpha,
        "lora_dropout": spec.dropout,
        "target_modules": target_modules(config, spec),
        "fan_in_fan_out": not checkpoint.transpose_all_kernels,  # GPT-2's Conv1D stores (in, out)
        "bias": "none",
        "use_rslora": False,
        "init_lora_weights": True,
        "inference_mode": True,
        "modules_to_save": None,
        "trainable_token_indices": token_indices,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(dict(sorted(tensors.items())), out / ADAPTER_WEIGHTS, metadata={"format": "pt"})
    (out / ADAPTER_CONFIG).write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")
    return out
