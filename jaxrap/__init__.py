"""jaxrap: fine-tune GPT-2-class models on French rap lyrics in pure JAX, and write lyrics.

Importing the package is cheap: jax and flax load only when a submodule that needs them
(``jaxrap.model``, ``jaxrap.train``, ``jaxrap.sample``) is imported, so the CLI and the
terminal UI start instantly.
"""

__version__ = "0.1.0"
