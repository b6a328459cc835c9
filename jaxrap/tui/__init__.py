"""The terminal UI (``python tui.py``, ``jaxrap tui``): a Textual rap studio.

Importing this package is cheap: Textual loads with ``jaxrap.tui.app``, and jax only inside
the worker that loads the model, so the window appears before the model does.
"""
