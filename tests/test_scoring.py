"""Scoring (docs/design.md) against hand-computed answers, the AlgoPerf discretisation, medians
over studies, best trials, speedups, and bootstrap intervals over studies."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.report import load, scoring
from tests.synthetic_results import write_study_grid

INF = math.inf
SUBMISSIONS = ["A", "B", "C"]
# Hand-made times (s) for 3 submissions x 4 workloads, with a tie (w1), misses (inf) and a
# ratio of exactly tau_max (A on w4). Ratios to the fastest, by workload:
#   w1: A 1, B 1, C 2.5      w2: A 1, B 1.5, C inf
#   w3: A inf, B 1, C 2.5    w4: A 4, B inf, C 1
TIMES = np.array(
    [
        [10.0, 20.0, INF, 40.0],
        [10.0, 30.0, 50.0, INF],
        [25.0, INF, 125.0, 10.0],
    ]
)
# Exact score: mean over workloads of max(0, 4 - r) / 3.
#   A: (1 + 1 + 0 + 0) / 4;  B: (1 + 2.5/3 + 1 + 0) / 4 = 17/24;  C: (0.5 + 0 + 0.5 + 1) / 4
EXACT = [0.5, 17 / 24, 0.5]
# AlgoPerf: 100 taus, spacing h = 3/99. A ratio r > 1 meeting n of the taus gets the trapezoid
# area h * (n - 1/2). Ratios 1.5 and 2.5 fall half-way between taus (n = 83, 50), so they get
# their exact area; r = 4 meets only the last tau: h/2 = 1/66, i.e. 1/198 of the score range.
ALGOPERF = [0.5 + 1 / (198 * 4), 17 / 24, 0.5]


def test_ratios_by_hand():
    expected = [[1, 1, INF, 4], [1, 1.5, 1, INF], [2.5, INF, 2.5, 1]]
    assert scoring.performance_ratios(TIMES) == pytest.approx(np.array(expected))


def test_profile_by_hand():
    taus = [1.0, 1.5, 2.49, 2.5, 3.99, 4.0]
    expected = [
        [0.5, 0.5, 0.5, 0.5, 0.5, 0.75],  # A: r=4 counts only from tau = 4 on
        [0.5, 0.75, 0.75, 0.75, 0.75, 0.75],
        [0.25, 0.25, 0.25, 0.75, 0.75, 0.75],
    ]
    assert scoring.performance_profile(TIMES, taus) == pytest.approx(np.array(expected))


def test_exact_score_by_hand():
    assert scoring.exact_scores(TIMES) == pytest.approx(EXACT, abs=1e-12)


def test_algoperf_score_by_hand():
    assert scoring.algoperf_scores(TIMES) == pytest.approx(ALGOPERF, abs=1e-12)


def test_exact_score_is_the_integral_of_the_profile():
    rng = np.random.default_rng(0)
    times = rng.uniform(1, 10, size=(4, 6))
    times[rng.random(times.shape) < 0.2] = INF
    taus = np.linspace(1, 4, 300_001)
    integral = np.trapezoid(scoring.performance_profile(times, taus), taus) / 3
    assert scoring.exact_scores(times) == pytest.approx(integral, abs=1e-4)


def test_algoperf_discretisation_drops_times_over_four_times_the_best():
    times = np.array([[10.0, 10.0], [41.0, 20.0]])
    assert scoring.algoperf_scores(times)[1] == pytest.approx(
        scoring.algoperf_scores(np.array([[10.0, 10.0], [INF, 20.0]]))[1]
    )
    assert scoring.exact_scores(times)[1] == pytest.approx((0 + 2 / 3) / 2)


def test_workload_nobody_reaches_counts_against_everyone():
    times = np.array([[1.0, INF], [2.0, INF]])
    assert scoring.exact_scores(times) == pytest.approx([0.5, (2 / 3) / 2])


def test_median_over_studies():
    assert scoring.median_time(np.array([1.0, 2.0, INF])) == 2.0
    assert scoring.median_time(np.array([1.0, INF, INF])) == INF  # most studies missed
    assert scoring.median_time(np.array([1.0, 2.0, 3.0, INF])) == 2.5
    assert scoring.median_time(np.array([1.0, INF])) == INF  # half missed, even count
    assert scoring.median_time(np.array([])) == INF


def test_speedup_geometric_mean_over_workloads_both_reached():
    speedup, used = scoring.speedups(TIMES, baseline=0)
    assert speedup == pytest.approx([1.0, math.sqrt(10 / 10 * 20 / 30), math.sqrt(0.4 * 4.0)])
    assert used.tolist() == [3, 2, 2]


def runs_frame(times: dict[tuple[str, str, int, int], float]) -> pd.DataFrame:
    rows = [
        {
            "run_id": f"{s}/{w}/{k}/{j}",
            "submission": s,
            "workload": w,
            "study": k,
            "trial": j,
            "time_to_target": t,
            "steps_to_target": 10 * t if math.isfinite(t) else np.nan,
            "final_validation_metric": 0.5,
            "target_value": 0.9,
            "lower_is_better": False,
        }
        for (s, w, k, j), t in times.items()
    ]
    return pd.DataFrame(rows)


def test_best_trial_is_the_fastest_and_ties_go_to_the_lower_trial():
    trial_times = [INF, 5.0, 3.0, INF, 3.0]
    runs = runs_frame({("A", "w", 0, j): t for j, t in enumerate(trial_times)})
    (best,) = scoring.best_trials(runs).itertuples()
    assert (best.trial, best.time_to_target, best.finished_trials) == (2, 3.0, 5)


def test_scores_from_run_folders_match_the_hand_computed_ones(tmp_path):
    """The same 3 x 4 case written as real run folders (external ruleset, 5 trials per study,
    the best trial of each study at the given time, the median over 3 studies = TIMES)."""
    spread = {0: 0.9, 1: 1.0, 2: 1.2}  # study multipliers; the median study is x1.0
    times = {
        (s, f"w{j + 1}"): [None if math.isinf(t) else t * spread[k] for k in range(3)]
        for i, s in enumerate(SUBMISSIONS)
        for j, t in enumerate(TIMES[i])
    }
    write_study_grid(tmp_path, times)
    loaded = load.load(tmp_path, use_cache=False)
    assert not loaded.skipped and not loaded.warnings
    for method, expected in (("exact", EXACT), ("algoperf", ALGOPERF)):
        board = scoring.score(loaded.runs, scoring.Settings(method=method, n_resamples=50))
        order = [board.submissions.index(s) for s in SUBMISSIONS]
        assert board.scores[order] == pytest.approx(expected, abs=1e-12)
        assert board.times[order] == pytest.approx(TIMES)
    assert board.submissions == ["B", "A", "C"]  # A and C tie: by name
    assert (board.n_studies == 3).all()


def test_bootstrap_intervals_over_studies():
    rng = scoring.cell_rng(0, "A", "w")
    medians = scoring.bootstrap_medians(np.array([10.0, 12.0, 14.0]), 2000, rng)
    low, high = scoring.interval(medians, 0.95)
    assert (low, high) == (10.0, 14.0)  # resampled medians, never interpolated
    assert set(np.unique(medians)) <= {10.0, 12.0, 14.0}

    # One study in three reaches: a resample holds it twice or more 7/27 of the time.
    medians = scoring.bootstrap_medians(np.array([10.0, INF, INF]), 2000, rng)
    assert scoring.interval(medians, 0.95).tolist() == [10.0, INF]
    assert (scoring.bootstrap_medians(np.array([7.0]), 10, rng) == 7.0).all()


def test_bootstrap_is_seeded_and_per_cell():
    studies = np.array([3.0, 5.0, 8.0, 13.0])
    first = scoring.bootstrap_medians(studies, 100, scoring.cell_rng(1, "A", "w"))
    again = scoring.bootstrap_medians(studies, 100, scoring.cell_rng(1, "A", "w"))
    other = scoring.bootstrap_medians(studies, 100, scoring.cell_rng(1, "B", "w"))
    assert (first == again).all() and not (first == other).all()


def test_score_intervals_reproducible_and_ordered():
    study_times = {
        ("A", "w1"): [10, 11, 13],
        ("B", "w1"): [9, 14, 20],
        ("A", "w2"): [5, 6, 5.5],
        ("B", "w2"): [7, INF, 6],
    }
    runs = runs_frame(
        {(s, w, k, 0): t for (s, w), ts in study_times.items() for k, t in enumerate(ts)}
    )
    settings = scoring.Settings(n_resamples=300, seed=3, baseline="A")
    board = scoring.score(runs, settings)
    again = scoring.score(runs, settings)
    assert np.array_equal(board.scores_ci, again.scores_ci)
    assert np.array_equal(board.times_ci, again.times_ci)
    assert (board.scores_ci[0] <= board.scores).all() and (board.scores <= board.scores_ci[1]).all()
    assert (board.times_ci[0] <= board.times).all() and (board.times <= board.times_ci[1]).all()
    b = board.index("B")
    assert board.speedup[b] == pytest.approx(math.sqrt(11 / 14 * 5.5 / 7))
    assert board.speedup_ci[0, b] <= board.speedup[b] <= board.speedup_ci[1, b]


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="exact, algoperf"):
        scoring.benchmark_scores(TIMES, "trapezoid")
