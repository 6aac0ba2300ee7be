"""Sweeps: a killed sweep resumes where it stopped, two sweeps share one folder, a Ray cluster runs cells.

The sweeps run the embedded model on real mirror data in subprocesses (`python -m harness sweep`), as a
user would; kills are real signals, the Ray cluster is real (`ray start` on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import needs, random_model, run_cli, write_sweep

pytestmark = [needs("mirror", "tokenizers", "embedded_model"), pytest.mark.slow]

OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def start_sweep(sweep: Path, log: Path, *args: str) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen([sys.executable, "-m", "harness", "sweep", str(sweep), *args], env=OFFLINE,
                            stdout=handle, stderr=subprocess.STDOUT, text=True)


def cached(output: Path, key: str) -> int:
    path = output / ".cells" / f"{key}.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not there yet
        return 0


def cell_keys(sweep: Path) -> list[tuple[str, str]]:
    """(task, key) of each cell, from the dry run's table."""
    done = run_cli("sweep", str(sweep), "--dry-run")
    assert done.returncode == 0, done.stderr
    return re.findall(r"^\S+\s+\|\s+(\S+)\s+\|.*\|\s+([0-9a-f]{20})\s*$", done.stdout, flags=re.M)


def results(output: Path) -> dict[str, tuple[dict, list[dict]]]:
    """Each cell's complete result and its per-sample records, by cell key (exactly one file per key)."""
    found: dict[str, tuple[dict, list[dict]]] = {}
    for path in sorted(output.glob("*.json")):
        result = json.loads(path.read_text())
        key = result["cell"]["key"]
        assert key not in found, f"cell {key} was written twice"
        assert result["status"] == "complete"
        samples = [json.loads(line) for line in (output / result["samples_file"]).read_text().splitlines()]
        found[key] = (result, samples)
    return found


def assert_same_results(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        (result_a, samples_a), (result_b, samples_b) = a[key], b[key]
        assert result_a["metrics"] == result_b["metrics"], key
        assert samples_a == samples_b, key


def wait_until(condition, timeout: float, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"sweep ended early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out:\n{log.read_text()[-3000:]}"
        time.sleep(0.02)


def last_progress(log: Path, total: int) -> int:
    """The highest count the scoring progress bar showed (of ``total`` requests)."""
    counts = re.findall(rf"Scoring log-likelihoods \(prefix tree\):\s+\d+%\|[^|]*\|\s*(\d+)/{total}", log.read_text())
    return max(map(int, counts), default=0)


def test_killed_sweep_resumes_and_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    """SIGTERM, then SIGKILL, mid-cell; the rerun computes only unanswered requests; results are identical."""
    tasks, limit, batch = ["arc_easy", "winogrande"], 40, 8
    reference = tmp_path / "reference"
    resumed = tmp_path / "resumed"
    sweep_ref = write_sweep(tmp_path, reference, ["smollm2-135m-instruct"], tasks, limit, batch_size=batch)
    sweep = write_sweep(tmp_path, resumed, ["smollm2-135m-instruct"], tasks, limit, batch_size=batch)
    (task, key), (_, second_key) = cell_keys(sweep)
    assert task == "arc_easy"
    total = 4 * limit  # ARC-Easy: 4 choices per doc (all 40 docs have 4)

    done = subprocess.run([sys.executable, "-m", "harness", "sweep", str(sweep_ref)], env=OFFLINE,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    # 1. SIGTERM mid-cell: a clean stop, the cell marked interrupted, the answers so far kept.
    log = tmp_path / "term.log"
    process = start_sweep(sweep, log)
    wait_until(lambda: cached(resumed, key) >= 24, 600, process, log)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 130
    assert log.read_text().strip().splitlines()[-1].startswith("error: interrupted")
    after_term = cached(resumed, key)
    assert 24 <= after_term < total
    assert not list(resumed.glob("*.json")), "an interrupted cell wrote a result"
    status = run_cli("status", str(resumed))
    assert re.search(rf"arc_easy\s+\|\s+interrupted\s+\|\s+{after_term} answers cached", status.stdout), status.stdout
    assert re.search(r"winogrande\s+\|\s+pending", status.stdout), status.stdout

    # 2. SIGKILL mid-cell, further on: nothing the progress bar had counted is lost.
    log = tmp_path / "kill.log"
    process = start_sweep(sweep, log)
    wait_until(lambda: cached(resumed, key) >= after_term + 40, 600, process, log)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    after_kill = cached(resumed, key)
    shown = last_progress(log, total - after_term)
    assert after_term + shown <= after_kill < total, (after_term, shown, after_kill)

    # 3. The rerun takes the lock the killed process held, answers only what the cache lacks, finishes both cells.
    log = tmp_path / "rerun.log"
    process = start_sweep(sweep, log)
    assert process.wait(timeout=1200) == 0, log.read_text()[-3000:]
    ours = results(resumed)
    counts = ours[key][0]["provenance"]["request_cache"]
    assert counts["from_cache"] == after_kill
    assert counts["computed"] == total - after_kill  # no stored answer is computed again
    assert ours[second_key][0]["provenance"]["request_cache"]["from_cache"] == 0
    assert_same_results(ours, results(reference))
    assert not list((resumed / ".cells").glob("*.state.json")), "a finished cell still looks unfinished"
    print(f"answers stored after SIGTERM {after_term}, after SIGKILL {after_kill} (progress bar had shown "
          f"{after_term + shown}); the rerun computed {counts['computed']} of {total}")


def test_two_sweeps_on_one_folder_compute_each_cell_once(tmp_path: Path) -> None:
    output = tmp_path / "shared"
    sweep = write_sweep(tmp_path, output, ["smollm2-135m-instruct"], ["arc_easy", "winogrande", "arc_challenge"], 10)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [start_sweep(sweep, log) for log in logs]
    for process, log in zip(processes, logs):
        assert process.wait(timeout=1500) == 0, log.read_text()[-3000:]
    found = results(output)  # valid JSON, one result per cell
    assert len(found) == 3
    computed = [line for log in logs for line in log.read_text().splitlines() if line.startswith("[computed]")]
    skipped = [line for log in logs for line in log.read_text().splitlines() if line.startswith("[skipped]")]
    assert len(computed) == 3 and len(skipped) == 3, (computed, skipped)
    for result, _ in found.values():
        assert result["provenance"]["request_cache"]["from_cache"] == 0  # nobody else's half-done work


@needs("ray")
def test_ray_cluster_runs_a_sweep_as_the_local_executor_does(tmp_path: Path) -> None:
    models = [str(random_model(tmp_path / "tiny-llama", "llama")), "smollm2-135m-instruct"]
    local = write_sweep(tmp_path, tmp_path / "local", models, ["arc_easy", "winogrande"], 8)
    on_ray = write_sweep(tmp_path, tmp_path / "ray", models, ["arc_easy", "winogrande"], 8)
    # Ray runs a 1-CPU task with OMP_NUM_THREADS=1; the local run uses one thread too, since the thread count
    # changes torch's summation order (log-likelihoods then differ in the 7th digit).
    done = run_cli("sweep", str(local), env={"OMP_NUM_THREADS": "1"}, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]

    ray_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    env = {**OFFLINE, "RAY_TMPDIR": str(ray_dir)}
    port = "6391"
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    try:
        subprocess.run([*ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1",
                        "--include-dashboard=false", f"--temp-dir={ray_dir}", "--disable-usage-stats"],
                       env=env, check=True, capture_output=True, timeout=180)
        subprocess.run([*ray, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1",
                        "--num-cpus=1", "--disable-usage-stats"], env=env, check=True, capture_output=True, timeout=180)
        done = subprocess.run([sys.executable, "-m", "harness", "sweep", str(on_ray), "--executor", "ray",
                               "--address", f"127.0.0.1:{port}"], env=env, capture_output=True, text=True, timeout=1500)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    finally:
        subprocess.run([*ray, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(ray_dir, ignore_errors=True)
    ours, theirs = results(tmp_path / "ray"), results(tmp_path / "local")
    assert len(ours) == 4
    assert_same_results(ours, theirs)
