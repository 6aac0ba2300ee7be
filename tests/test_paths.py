"""lm-eval's request cache lives under the project's cache folder, never inside site-packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.paths import CACHE_DIR


def test_lm_eval_cache_points_into_the_project_cache() -> None:
    code = "import harness, lm_eval.caching.cache as c; print(c.OVERRIDE_PATH)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    path = Path(done.stdout.strip())
    assert path == CACHE_DIR / "lm_eval"
    assert "site-packages" not in str(path)
