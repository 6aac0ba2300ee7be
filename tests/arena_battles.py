"""Battles simulated from known Bradley-Terry ratings, for testing the Arena fit (``tests/test_arena.py``)."""

from __future__ import annotations

import numpy as np

from harness.arena import BASE, SCALE, Battle

TRUE_RATINGS = {"gpt-4": 1250.0, "claude": 1180.0, "llama-2-70b-chat": 1090.0, "vicuna-13b": 1040.0,
                "llama-2-7b-chat": 1000.0, "koala-13b": 950.0, "dolly-v2-12b": 820.0, "smollm2-135m": 670.0}


def simulate(ratings: dict[str, float], battles: int, seed: int, tie_rate: float = 0.2) -> list[Battle]:
    """Random pairs; a tie with probability ``tie_rate``, else a win drawn from the Bradley-Terry odds."""
    rng = np.random.default_rng(seed)
    models = list(ratings)
    out = []
    for _ in range(battles):
        a, b = rng.choice(len(models), 2, replace=False)
        p_a = 1.0 / (1.0 + BASE ** ((ratings[models[b]] - ratings[models[a]]) / SCALE))
        draw = rng.random()
        winner = "tie" if draw < tie_rate else ("model_a" if rng.random() < p_a else "model_b")
        out.append(Battle(models[a], models[b], winner))
    return out
