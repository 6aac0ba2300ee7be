"""`harness arena`: the Bradley-Terry fit recovers known ratings, equals a plain logistic regression (FastChat's
own construction), covers the truth with its bootstrap intervals, and refuses bad battles in one line."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from harness import arena
from harness.cli import main
from tests.arena_battles import TRUE_RATINGS, simulate

CENTRED = dict(zip(TRUE_RATINGS, np.array(list(TRUE_RATINGS.values())) - np.mean(list(TRUE_RATINGS.values()))
                   + arena.INITIAL))


def _logistic_regression(battles: list[arena.Battle]) -> dict[str, float]:
    """FastChat's ``compute_mle_elo`` construction: two rows per ordered pair, weighted by 2 x wins + ties."""
    models = sorted({b.model_a for b in battles} | {b.model_b for b in battles})
    weights = arena._counts(battles, models)
    rows, labels, sample_weight = [], [], []
    for i in range(len(models)):
        for j in range(len(models)):
            if i != j and (weights[i, j] or weights[j, i]):
                x = np.zeros(len(models))
                x[i], x[j] = math.log(arena.BASE), -math.log(arena.BASE)
                rows += [x, x]
                labels += [1.0, 0.0]
                sample_weight += [weights[i, j], weights[j, i]]
    fit = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-8, max_iter=10_000)
    fit.fit(np.array(rows), np.array(labels), sample_weight=np.array(sample_weight))
    elo = arena.SCALE * fit.coef_[0] + arena.INITIAL
    return dict(zip(models, elo - elo.mean() + arena.INITIAL))


def test_the_fit_equals_a_plain_logistic_regression_ties_included() -> None:
    battles = simulate(TRUE_RATINGS, 3000, seed=7, tie_rate=0.2)
    ours = {r.model: r.rating for r in arena.rate(battles, rounds=100).ratings}
    theirs = _logistic_regression(battles)
    gaps = {m: abs(ours[m] - theirs[m]) for m in ours}
    print(f"measured: arena fit vs logistic regression, max |Δ| {max(gaps.values()):.2e} Elo points")
    assert max(gaps.values()) < 1.0, gaps


def test_simulated_battles_give_back_the_order_and_intervals_cover_the_truth() -> None:
    inside = total = ordered = 0
    seeds = range(20)
    for seed in seeds:
        result = arena.rate(simulate(TRUE_RATINGS, 3000, seed, tie_rate=0.0), rounds=100, seed=seed)
        ordered += [r.model for r in result.ratings] == list(TRUE_RATINGS)
        inside += sum(r.lower <= CENTRED[r.model] <= r.upper for r in result.ratings)
        total += len(result.ratings)
    print(f"measured: arena order recovered in {ordered}/{len(seeds)} seeds; "
          f"true rating inside its 95% interval {inside}/{total}")
    assert ordered >= 18, "the order of ratings 40 points apart is recovered in nearly every seed"
    assert inside / total >= 0.88, "95% intervals cover the true ratings about 95% of the time"


def test_same_seed_same_intervals_and_the_anchor_shifts_the_scale() -> None:
    battles = simulate(TRUE_RATINGS, 1000, seed=3)
    first, again = arena.rate(battles, rounds=100, seed=5), arena.rate(battles, rounds=100, seed=5)
    assert first == again
    anchored = arena.rate(battles, rounds=100, seed=5, anchor=("gpt-4", 1201.0))
    gpt4 = next(r for r in anchored.ratings if r.model == "gpt-4")
    assert gpt4.rating == pytest.approx(1201.0)
    shift = 1201.0 - next(r for r in first.ratings if r.model == "gpt-4").rating
    for plain, moved in zip(first.ratings, anchored.ratings):
        assert (moved.rating, moved.lower, moved.upper) == pytest.approx(
            (plain.rating + shift, plain.lower + shift, plain.upper + shift))


def test_a_tie_counts_half_to_each_side() -> None:
    battles = [arena.Battle("a", "b", "model_a"), arena.Battle("a", "b", "model_b"), arena.Battle("a", "b", "tie"),
               arena.Battle("b", "c", "model_a"), arena.Battle("c", "b", "model_a"),
               arena.Battle("b", "c", "tie (bothbad)")]
    ratings = {r.model: r.rating for r in arena.rate(battles, rounds=100).ratings}
    assert ratings == pytest.approx({"a": 1000.0, "b": 1000.0, "c": 1000.0}, abs=1e-3)


def test_harness_arena_writes_ratings_win_rates_and_the_chart(tmp_path: Path, capsys) -> None:
    battles = simulate(TRUE_RATINGS, 800, seed=11)
    path = tmp_path / "battles.json"
    path.write_text(json.dumps([b.__dict__ for b in battles]))
    assert main(["arena", str(path), "--out", str(tmp_path / "out"), "--rounds", "100",
                 "--anchor", "gpt-4=1201"]) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "ratings.csv").open()))
    assert [r["model"] for r in rows][0] == "gpt-4" and float(rows[0]["rating"]) == 1201.0
    assert sum(int(r["battles"]) for r in rows) == 2 * len(battles)
    assert all(float(r["lower"]) <= float(r["rating"]) <= float(r["upper"]) for r in rows)
    rates = {r["model"]: r for r in csv.DictReader((tmp_path / "out" / "win_rates.csv").open())}
    met = [b for b in battles if {b.model_a, b.model_b} == {"gpt-4", "dolly-v2-12b"}]
    won = sum((b.winner == "model_a" and b.model_a == "gpt-4") or (b.winner == "model_b" and b.model_b == "gpt-4")
              for b in met)
    assert float(rates["gpt-4"]["dolly-v2-12b"]) == pytest.approx(won / len(met), abs=1e-4)
    spec = json.loads((tmp_path / "out" / "arena.json").read_text())
    assert spec["bootstrap_rounds"] == 100 and spec["anchor"] == {"gpt-4": 1201.0}
    assert all((tmp_path / "out" / f"arena.{fmt}").stat().st_size > 1000 for fmt in ("png", "svg", "pdf"))


@pytest.mark.parametrize(("body", "message"), [
    ('{"model_a": "a", "model_b": "b", "winner": "model_a"}\n{"model_a": "a", "winner": "tie"}\n',
     r"battles\.jsonl line 2 has no model_b"),
    ('{"model_a": "a", "model_b": "b", "winner": "model_a"}\n{oops\n', r"battles\.jsonl line 2 is not JSON"),
    ('{"model_a": "a", "model_b": "b", "winner": "a"}\n', r"line 1: winner 'a' is not one of model_a, model_b"),
    ('{"model_a": "a", "model_b": "a", "winner": "tie"}\n', r"line 1 pits a against itself"),
    ('{"model_a": "a", "model_b": "b", "winner": "model_a"}\n{"model_a": "b", "model_b": "c", "winner": "tie"}\n',
     r"a never lost to \(or tied\) a model outside it, so the maximum-likelihood rating is unbounded"),
    ("\n", r"holds no battles"),
])
def test_bad_battles_get_one_line_and_nothing_is_written(body: str, message: str, tmp_path: Path, capsys) -> None:
    import re

    (tmp_path / "battles.jsonl").write_text(body)
    assert main(["arena", str(tmp_path / "battles.jsonl"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err
    assert not (tmp_path / "out" / "ratings.csv").exists()


def test_an_anchor_on_a_model_without_battles_is_refused(tmp_path: Path, capsys) -> None:
    path = tmp_path / "battles.jsonl"
    path.write_text("\n".join(json.dumps(b.__dict__) for b in simulate(TRUE_RATINGS, 200, seed=1)))
    assert main(["arena", str(path), "--out", str(tmp_path / "out"), "--anchor", "nobody=1000"]) == 2
    assert "--anchor names nobody, which has no battles here" in capsys.readouterr().err
    assert not (tmp_path / "out" / "ratings.csv").exists()
