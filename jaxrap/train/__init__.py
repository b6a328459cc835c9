"""The training layer: optimizer, sharding, pure train/eval steps, trackers, hooks, loop.

``pipeline.run_training`` is `jaxrap train` as a function; ``loop.train`` is the model-agnostic
loop it drives: next batch (``prefetch``), train step (``step``), hooks (``hooks``: log,
evaluate, save), until the last step or a stop request (``stop``). Nothing here imports the
terminal UI: a UI follows a run through a tracker.
"""
