"""Rules a GPT-2 shape obeys, said once for the two places that check them: the run config
(``jaxrap.config``: ``model.shape``, ``data.block_size``, before anything runs) and the model's
own config (``jaxrap.model.config.GPT2Config``, for any model, pretrained ones included).

Each returns the problem as ``"must be ..., got ..."`` (the caller names the key), or None.
No imports: the model's config stays free of pydantic, and the terminal UI of both.
"""

from __future__ import annotations


def width_problem(n_embd: int, n_head: int) -> str | None:
    """Heads must divide the width: each head attends in n_embd / n_head dimensions."""
    return None if n_embd % n_head == 0 else f"must be divisible by n_head ({n_head}), got {n_embd}"


def block_size_problem(block_size: int, n_positions: int, context: str) -> str | None:
    """A training or scoring block must fit the context: position n_positions has no embedding.
    ``context`` names the limit in the message ("model.shape.n_positions")."""
    return None if block_size <= n_positions else f"must be <= {context} ({n_positions}), got {block_size}"
