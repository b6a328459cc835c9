"""The model layer: one interface (``lm``) over the families a registry keys by config.json's
``model_type`` (``registry``): GPT-2 (``gpt2``, ``config``) and a Llama-style decoder for
llama, mistral, qwen2 and qwen3 (``llama``, ``llama_config``); the KV cache every family decodes
with (``kv_cache``), HF file I/O (``hf``: name maps in ``hf_names``, tensors read one at a time
by ``tensor_files``), grown embeddings (``embeddings``), the loss's units (``loss``) and the
XLA:CPU workarounds (``xla_cpu``)."""
