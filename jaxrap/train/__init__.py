"""The training layer: optimizer, pure train/eval steps, trackers, hooks, loop (the mesh and
sharding rules it uses are ``jaxrap.sharding``, shared with evaluation).

``pipeline.run_training`` is `jaxrap train` as a function; ``loop.train`` is the model-agnostic
loop it drives: next batch (``prefetch``), train step (``step``), hooks (``hooks``: log,
evaluate, save), until the last step or a stop request (``stop``). Nothing here imports the
terminal UI: a UI follows a run through a tracker.
"""
