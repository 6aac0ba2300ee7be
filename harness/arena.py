"""``harness arena``: Bradley-Terry ratings on the Elo scale from pairwise battles, as Chatbot Arena computes them.

Battles are read in FastChat's format (a JSON list, or JSON Lines, of objects with ``model_a``, ``model_b`` and
``winner`` in ``model_a`` / ``model_b`` / ``tie`` / ``tie (bothbad)``): human votes a user has, or pairwise
judgments. The fit is FastChat's ``compute_mle_elo``: maximum likelihood of P(a beats b) = 1 / (1 + 10^((R_b -
R_a) / 400)), a win weighted 2 and a tie 1 to each side, ratings centred on 1000. It is solved here with
scipy's L-BFGS on the convex log-likelihood (FastChat uses scikit-learn's unpenalised logistic regression on
the same design; a test shows the two agree). Confidence intervals are the 2.5 and 97.5 percentiles of fits to
battles resampled with replacement (FastChat's ``get_bootstrap_result``), seeded, so a rerun gives the same
figures. ``--anchor MODEL=RATING`` shifts the whole scale (intervals too) so that one model sits at a rating,
e.g. its published Arena rating; only differences within one fit carry meaning either way.

A maximum-likelihood rating exists only when every model both beat (or tied) and lost to (or tied) the
others through some chain of battles: the win graph must be strongly connected. Otherwise a rating is
unbounded and the fit is refused with the models that cause it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from harness import checks
from harness.errors import HarnessError

BASE, SCALE, INITIAL = 10.0, 400.0, 1000.0
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
FIX = "give FastChat's battle format: a JSON list or JSON Lines of {model_a, model_b, winner}"


@dataclass(frozen=True)
class Battle:
    """One pairwise comparison; ``winner`` is one of :data:`WINNERS`."""

    model_a: str
    model_b: str
    winner: str


@dataclass(frozen=True)
class Rating:
    """A model's fitted rating with its bootstrap interval and how many battles it took part in."""

    model: str
    rating: float
    lower: float
    upper: float
    battles: int


@dataclass(frozen=True)
class Ratings:
    """A whole fit: the ratings (best first), the settings that produced them, and the win-rate matrix."""

    ratings: tuple[Rating, ...]
    rounds: int
    seed: int
    anchor: tuple[str, float] | None
    win_rates: dict[str, dict[str, float | None]]


def _battle(row: object, where: str) -> Battle:
    if not isinstance(row, dict):
        raise HarnessError(f"{where} is not an object with model_a, model_b and winner", FIX)
    missing = [key for key in ("model_a", "model_b", "winner") if key not in row]
    if missing:
        raise HarnessError(f"{where} has no {', '.join(missing)}", FIX)
    a, b, winner = row["model_a"], row["model_b"], row["winner"]
    if not (isinstance(a, str) and a and isinstance(b, str) and b):
        raise HarnessError(f"{where}: model_a and model_b must be model names, got {a!r} and {b!r}", FIX)
    if a == b:
        raise HarnessError(f"{where} pits {a} against itself", "remove the row: a battle needs two models")
    if winner not in WINNERS:
        raise HarnessError(f"{where}: winner {winner!r} is not one of {', '.join(WINNERS)}", FIX)
    return Battle(a, b, winner)


def read_battles(path: Path) -> list[Battle]:
    """Battles from a JSON list or a JSON Lines file; a bad row is named by its number (or line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"cannot read battles {path} ({getattr(exc, 'strerror', None) or exc})", FIX) from None
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})", FIX) from None
        battles = [_battle(row, f"{path}: battle {i}") for i, row in enumerate(rows, 1)]
    else:
        battles = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise HarnessError(f"{path} line {number} is not JSON ({exc.msg})", FIX) from None
            battles.append(_battle(row, f"{path} line {number}"))
    if not battles:
        raise HarnessError(f"{path} holds no battles", FIX)
    return battles


def _encode(battles: Sequence[Battle], models: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Battles as arrays: index of model a, index of model b, index of the winner in :data:`WINNERS`."""
    index = {model: i for i, model in enumerate(models)}
    return (np.array([index[b.model_a] for b in battles]), np.array([index[b.model_b] for b in battles]),
            np.array([WINNERS.index(b.winner) for b in battles]))


def _weights(a: np.ndarray, b: np.ndarray, winner: np.ndarray, size: int) -> np.ndarray:
    """``W[i, j]``: FastChat's weighted count of i beating j (a win 2, a tie 1 to each side)."""
    weights = np.zeros((size, size))
    tie = winner >= 2
    np.add.at(weights, (a[winner == 0], b[winner == 0]), 2.0)
    np.add.at(weights, (b[winner == 1], a[winner == 1]), 2.0)
    np.add.at(weights, (a[tie], b[tie]), 1.0)
    np.add.at(weights, (b[tie], a[tie]), 1.0)
    return weights


def _counts(battles: Sequence[Battle], models: Sequence[str]) -> np.ndarray:
    return _weights(*_encode(battles, models), len(models))


def _fit(weights: np.ndarray) -> np.ndarray:
    """Maximum-likelihood Bradley-Terry strengths (natural-log scale, mean 0) for a weighted win matrix."""
    rows, cols = np.nonzero(weights)
    w = weights[rows, cols]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        margin = theta[rows] - theta[cols]
        value = float(np.sum(w * np.logaddexp(0.0, -margin)))
        slope = -w / (1.0 + np.exp(margin))
        grad = np.zeros_like(theta)
        np.add.at(grad, rows, slope)
        np.add.at(grad, cols, -slope)
        return value, grad

    result = minimize(loss, np.zeros(len(weights)), jac=True, method="L-BFGS-B",
                      options={"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-10})
    rated = (weights.sum(axis=0) + weights.sum(axis=1)) > 0  # a model absent from a bootstrap resample is not
    return result.x - result.x[rated].mean()                  # part of the centring


def _elo(strengths: np.ndarray) -> np.ndarray:
    return SCALE * strengths / math.log(BASE) + INITIAL


def _check_connected(weights: np.ndarray, models: Sequence[str]) -> None:
    graph = coo_matrix(weights > 0)
    count, labels = connected_components(graph, directed=True, connection="strong")
    if count > 1:
        # the group no one outside it beats (or the one that beats no one outside it) makes ratings unbounded
        groups = [[m for m, label in zip(models, labels) if label == k] for k in range(count)]
        smallest = min(groups, key=len)
        raise HarnessError(
            f"the battles do not link every model both ways: {', '.join(smallest)} never "
            f"{'lost to' if _wins_only(weights, models, smallest) else 'beat'} (or tied) a model outside "
            f"{'them' if len(smallest) > 1 else 'it'}, so the maximum-likelihood rating is unbounded",
            "add battles that link the models both ways (or leave those models out)")


def _wins_only(weights: np.ndarray, models: Sequence[str], group: Sequence[str]) -> bool:
    inside = [models.index(m) for m in group]
    outside = [i for i in range(len(models)) if i not in inside]
    return not weights[np.ix_(outside, inside)].any()


def win_rates(battles: Sequence[Battle], models: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """FastChat's ``compute_pairwise_win_fraction``: the share of row's battles against column that row won
    (ties count as battles, not as wins); ``None`` where the two never met."""
    index = {model: i for i, model in enumerate(models)}
    wins = np.zeros((len(models), len(models)))
    met = np.zeros_like(wins)
    for battle in battles:
        a, b = index[battle.model_a], index[battle.model_b]
        met[a, b] += 1
        met[b, a] += 1
        if battle.winner == "model_a":
            wins[a, b] += 1
        elif battle.winner == "model_b":
            wins[b, a] += 1
    return {row: {col: (float(wins[i, j] / met[i, j]) if met[i, j] else None)
                  for j, col in enumerate(models) if j != i} for i, row in enumerate(models)}


def rate(battles: Sequence[Battle], rounds: int = 1000, seed: int = 0,
         anchor: tuple[str, float] | None = None) -> Ratings:
    """Ratings with bootstrap 95% intervals over ``rounds`` resamples of the battles."""
    checks.bootstrap_rounds(rounds)
    models = sorted({b.model_a for b in battles} | {b.model_b for b in battles})
    if anchor and anchor[0] not in models:
        raise HarnessError(f"--anchor names {anchor[0]}, which has no battles here",
                           f"anchor one of the rated models: {', '.join(models)}")
    weights = _counts(battles, models)
    _check_connected(weights, models)
    point = _elo(_fit(weights))
    a, b, winner = _encode(battles, models)
    rng = np.random.default_rng(seed)
    samples = np.empty((rounds, len(models)))
    for k in range(rounds):
        drawn = rng.integers(0, len(battles), len(battles))
        samples[k] = _elo(_fit(_weights(a[drawn], b[drawn], winner[drawn], len(models))))
        present = np.zeros(len(models), dtype=bool)
        present[a[drawn]] = present[b[drawn]] = True
        samples[k, ~present] = np.nan  # a model drawn into no battle of this round has no rating in it
    shift = anchor[1] - point[models.index(anchor[0])] if anchor else 0.0
    lower, upper = np.nanpercentile(samples, [2.5, 97.5], axis=0)
    played = {m: sum(m in (b.model_a, b.model_b) for b in battles) for m in models}
    ratings = sorted((Rating(m, float(point[i] + shift), float(lower[i] + shift), float(upper[i] + shift), played[m])
                      for i, m in enumerate(models)), key=lambda r: -r.rating)
    return Ratings(tuple(ratings), rounds, seed, anchor, win_rates(battles, [r.model for r in ratings]))


def parse_anchor(text: str | None) -> tuple[str, float] | None:
    if text is None:
        return None
    model, sep, value = text.rpartition("=")
    try:
        if not (sep and model):
            raise ValueError
        return model, float(value)
    except ValueError:
        raise HarnessError(f"--anchor {text!r} is not MODEL=RATING", "e.g. --anchor gpt-4-0314=1201") from None


def write(result: Ratings, battles_path: Path, out: Path) -> list[Path]:
    """``ratings.csv``, ``win_rates.csv``, ``arena.json`` (settings and the battles' sha256) and the chart."""
    from harness import charts

    out.mkdir(parents=True, exist_ok=True)
    ratings_csv, rates_csv, spec = out / "ratings.csv", out / "win_rates.csv", out / "arena.json"
    with ratings_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("model", "rating", "lower", "upper", "battles"))
        writer.writerows((r.model, f"{r.rating:.1f}", f"{r.lower:.1f}", f"{r.upper:.1f}", r.battles)
                         for r in result.ratings)
    models = [r.model for r in result.ratings]
    with rates_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("model", *models))
        writer.writerows((row, *("" if row == col or result.win_rates[row][col] is None
                                 else f"{result.win_rates[row][col]:.4f}" for col in models)) for row in models)
    spec.write_text(json.dumps({
        "battles": str(battles_path), "battles_sha256": hashlib.sha256(Path(battles_path).read_bytes()).hexdigest(),
        "method": "Bradley-Terry maximum likelihood (FastChat compute_mle_elo): base 10, scale 400, initial 1000, "
                  "a tie half to each side", "bootstrap_rounds": result.rounds, "seed": result.seed,
        "interval": "2.5 and 97.5 percentiles of the bootstrap fits",
        "anchor": dict([result.anchor]) if result.anchor else None,
    }, indent=2) + "\n", encoding="utf-8")
    return [ratings_csv, rates_csv, spec, *charts.arena_chart(result, out)]


def read(folder: Path) -> Ratings:
    """A fit written by :func:`write` (``ratings.csv``, ``win_rates.csv``, ``arena.json``), for the report."""
    folder = Path(folder)
    try:
        spec = json.loads((folder / "arena.json").read_text(encoding="utf-8"))
        with (folder / "ratings.csv").open(encoding="utf-8", newline="") as handle:
            ratings = tuple(Rating(row["model"], float(row["rating"]), float(row["lower"]), float(row["upper"]),
                                   int(row["battles"])) for row in csv.DictReader(handle))
        with (folder / "win_rates.csv").open(encoding="utf-8", newline="") as handle:
            rates = {row["model"]: {col: float(v) if v else None for col, v in row.items()
                                    if col not in ("model", row["model"])} for row in csv.DictReader(handle)}
    except (OSError, ValueError, KeyError) as exc:
        raise HarnessError(f"{folder} holds no readable arena fit ({type(exc).__name__}: {exc})",
                           "pass the --out folder of `harness arena`") from None
    anchor = next(iter(spec["anchor"].items())) if spec.get("anchor") else None
    return Ratings(ratings, int(spec["bootstrap_rounds"]), int(spec["seed"]), anchor, rates)
