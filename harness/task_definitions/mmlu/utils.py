"""Hooks for the YAML tasks in this folder (lm-eval resolves ``!function utils.X`` here)."""

from harness.task_hooks import *  # noqa: F401,F403
