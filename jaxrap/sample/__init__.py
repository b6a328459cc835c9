"""The sampling layer: sampling params, logit processors, jitted KV-cache decoding, and the
streaming ``Generator`` the CLI and the terminal UI share. ``params`` and ``context`` (how a
prompt and its budget fit the context) import no jax."""
