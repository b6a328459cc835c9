"""How a prompt and its token budget share the model's context (``n_positions``).

The sampler's rule (``Generator.fit_context`` cuts with a warning, ``fitted_prompt`` silently),
in pure Python: the prompt keeps its first ``keep`` tokens (the song prefix, when they leave
room for one more) and its last ones, as many as ``max_new_tokens`` leaves room for but at
least half the context, since a long generation after a prompt cut to a few tokens would ignore
what the user wrote; the budget is then ``max_new_tokens`` or what is left. A context of one
token, which cannot hold a prompt and a new token, is a JaxrapError.
"""

from __future__ import annotations

from collections.abc import Sequence

from jaxrap.errors import JaxrapError


def fit_prompt(prompt_ids: Sequence[int], max_new_tokens: int, context: int, *, keep: int = 0) -> tuple[list[int], int]:
    """(prompt ids that fit, new-token budget) for a non-empty prompt (see the module docstring)."""
    if context < 2:
        raise JaxrapError(f"this model has a context of {context} token: it cannot hold a prompt and a new token")
    room = max(context - max_new_tokens, context // 2)
    ids = list(prompt_ids)
    if len(ids) > room:
        keep = keep if room > keep else 0
        ids = ids[:keep] + ids[len(ids) - (room - keep) :]
    return ids, min(max_new_tokens, context - len(ids))

