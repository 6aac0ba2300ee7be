"""Where the project keeps things: its task definitions and published scores (package data), results, caches.

The task YAMLs (with their helper modules) and the published scores ship inside the package, so an
installed ``harness`` works from any working directory. Results go to ``results/`` under the working
directory. A checkout is the folder holding ``pyproject.toml`` above the package; the benchmark mirror
is looked for beside it (``../shared/data``, see :mod:`harness.data`).

Importing this module points lm-eval's request cache at the project's cache folder (never inside
site-packages); it must be imported before lm-eval, which ``harness/__init__.py`` guarantees.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
TASKS_DIR = PACKAGE_DIR / "task_definitions"
PUBLISHED_CSV = PACKAGE_DIR / "published_scores.csv"
CHECKOUT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None
RESULTS_DIR = Path("results")  # under the working directory
RUNS_DIR = RESULTS_DIR / "runs"
CACHE_DIR = Path(os.environ.get("HARNESS_CACHE_DIR")
                 or (CHECKOUT / ".cache" if CHECKOUT else Path.home() / ".cache" / "open-llm-harness")).resolve()

os.environ.setdefault("LM_HARNESS_CACHE_PATH", str(CACHE_DIR / "lm_eval"))
