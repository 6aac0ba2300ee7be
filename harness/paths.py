"""Where the project keeps things: tasks, results, caches.

Importing this module points lm-eval's request cache at the project's cache folder (never inside
site-packages); it must be imported before lm-eval, which ``harness/__init__.py`` guarantees.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TASKS_DIR = PROJECT_ROOT / "tasks"
RESULTS_DIR = PROJECT_ROOT / "results"
RUNS_DIR = RESULTS_DIR / "runs"
CACHE_DIR = Path(os.environ.get("HARNESS_CACHE_DIR", PROJECT_ROOT / ".cache"))

os.environ.setdefault("LM_HARNESS_CACHE_PATH", str(CACHE_DIR / "lm_eval"))
