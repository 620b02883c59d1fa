"""Training: config-driven trainer, checkpoints, hooks."""
