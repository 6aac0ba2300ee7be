"""open-llm-harness: run open models through lm-eval tasks, with provenance on every figure."""

__version__ = "0.1.0"
