"""The model layer: GPT-2 in Flax NNX and its pure ``make_forward`` (``gpt2``), its config
(``config``), HF file I/O (``hf``), grown embeddings (``embeddings``), the loss's units
(``loss``) and the XLA:CPU workarounds (``xla_cpu``)."""
