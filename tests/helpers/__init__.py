"""Test-only helpers: synthetic datasets, tiny checkpoints and a reader of offline W&B runs."""
