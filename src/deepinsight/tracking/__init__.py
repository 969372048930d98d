"""Experiment tracking: the configured Lightning loggers and what W&B gets beyond them."""
