"""The training layer: optimizer, sharding, pure train/eval steps, checkpoints, trackers, loop.

``pipeline.run_training`` is `jaxrap train` as a function; ``loop.train`` is the model-agnostic
loop it drives. Nothing here imports the terminal UI: a UI follows a run through a tracker.
"""
