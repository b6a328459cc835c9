"""The sampling layer: sampling params, logit processors, jitted KV-cache decoding, and the
streaming ``Generator`` the CLI and the terminal UI share. ``params`` imports no jax."""
