"""The model layer: GPT-2 in Flax NNX (``gpt2``), its config (``config``), HF file I/O (``hf``)."""
