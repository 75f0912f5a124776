"""Statistics for claims (harness/report/stats.py) against hand and brute-force computations:
the probability of being faster (ties, misses, unequal study counts, n = 1 and 2), its stratified
bootstrap interval (exact enumeration of every resample), the paired tests, the studies needed,
IQM and the aggregates, the n < 3 warning, and `python -m harness.report --compare`."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from harness.report import cli, scoring, stats
from tests.synthetic_results import write_study_grid

INF = math.inf


def studies_frame(times: dict[tuple[str, str], list[float]], steps=None) -> pd.DataFrame:
    """A best_trials()-shaped frame: study k of each (submission, workload) cell."""
    rows = []
    for (submission, workload), per_study in times.items():
        for study, time in enumerate(per_study):
            step = (steps or {}).get((submission, workload), [None] * len(per_study))[study]
            rows.append(
                {
                    "submission": submission,
                    "workload": workload,
                    "study": study,
                    "time_to_target": float(time),
                    "steps_to_target": step if step is not None else 10 * time,
                }
            )
    return pd.DataFrame(rows)


# -- probability of being faster -----------------------------------------------------------------
@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([1.0, INF], [2.0, INF], Fraction(5, 8)),  # (1,2) 1, (1,inf) 1, (inf,2) 0, (inf,inf) 1/2
        ([3.0], [3.0], Fraction(1, 2)),  # n = 1, a tie
        ([1.0, 2.0, 3.0], [2.0], Fraction(1, 2)),  # unequal counts: 1 + 1/2 + 0 over 3
        ([INF, INF], [5.0, 6.0], Fraction(0)),  # only misses: slower than any time
        ([4.0, 4.0], [4.0, 1.0], Fraction(1, 4)),  # n = 2: ties count half
    ],
)
def test_probability_faster_by_hand(a, b, expected):
    assert stats.probability_faster(np.array(a), np.array(b)) == pytest.approx(float(expected))


def test_overall_probability_is_the_mean_over_workloads_and_skips_a_workload_one_never_ran():
    frame = studies_frame(
        {
            ("A", "w1"): [1.0, INF],
            ("B", "w1"): [2.0, INF],
            ("A", "w2"): [3.0],
            ("B", "w2"): [3.0],
            ("A", "w3"): [1.0],  # B never ran w3: no comparison there
        }
    )
    rows = stats.compare(frame, "A", "B", ["w1", "w2", "w3"], n_resamples=50).set_index("workload")
    assert list(rows.index) == ["w1", "w2", stats.OVERALL]
    assert rows.loc[stats.OVERALL, "p_a_faster"] == pytest.approx((5 / 8 + 1 / 2) / 2)
    assert rows.loc[stats.OVERALL, "workloads"] == 2


def exact_bootstrap(strata: list[tuple[list[float], list[float]]]) -> list[tuple[float, int]]:
    """Every equally likely stratified resample (each side of each workload drawn with
    replacement on its own): the mean over workloads of P(a < b), as (value, multiplicity)."""
    per_workload = []
    for a, b in strata:
        values = [
            float(stats.probability_faster(np.array(x), np.array(y)))
            for x in itertools.product(a, repeat=len(a))
            for y in itertools.product(b, repeat=len(b))
        ]
        per_workload.append(values)
    outcomes: dict[float, int] = {}
    for combo in itertools.product(*per_workload):
        value = round(sum(combo) / len(combo), 12)
        outcomes[value] = outcomes.get(value, 0) + 1
    return sorted(outcomes.items())


def exact_quantile(outcomes: list[tuple[float, int]], q: float) -> tuple[float, float]:
    """The smallest value whose cdf reaches q, and how far the cdf is from q on either side."""
    total = sum(n for _, n in outcomes)
    cumulative = 0
    for value, n in outcomes:
        before, cumulative = cumulative / total, cumulative + n
        if cumulative / total >= q:
            return value, min(q - before, cumulative / total - q)
    raise AssertionError("no quantile")


def test_bootstrap_interval_is_the_exact_stratified_bootstrap_quantiles():
    strata = [([1.0, 3.0, INF], [5.0, 4.0]), ([5.0, 4.0], [1.0, 3.0, 6.0])]
    frame = studies_frame(
        {("A", "w1"): strata[0][0], ("B", "w1"): strata[0][1]}
        | {("A", "w2"): strata[1][0], ("B", "w2"): strata[1][1]}
    )
    outcomes = exact_bootstrap(strata)
    (low, low_margin), (high, high_margin) = (exact_quantile(outcomes, q) for q in (0.025, 0.975))
    assert min(low_margin, high_margin) > 0.01  # far enough from a jump for 4000 resamples
    assert 0 < low < high < 1  # not a trivial [0, 1]
    rows = stats.compare(frame, "A", "B", ["w1", "w2"], n_resamples=4000, seed=3)
    overall = rows.set_index("workload").loc[stats.OVERALL]
    assert (overall["p_ci_low"], overall["p_ci_high"]) == pytest.approx((low, high))


def test_resampled_probability_is_probability_faster_of_each_explicit_resample():
    a, b = np.array([1.0, 3.0, INF, 3.0]), np.array([3.0, INF, 0.5])
    rng = np.random.default_rng(5)
    counts_a = stats.resample_counts(len(a), 30, rng)
    counts_b = stats.resample_counts(len(b), 30, rng)
    assert (counts_a.sum(axis=1) == len(a)).all() and (counts_b.sum(axis=1) == len(b)).all()
    got = stats.resampled_probability(a, b, counts_a, counts_b)
    for r in range(30):
        x, y = np.repeat(a, counts_a[r]), np.repeat(b, counts_b[r])
        assert got[r] == pytest.approx(float(stats.probability_faster(x, y)))


def test_one_study_each_gives_a_point_interval():
    rows = stats.compare(studies_frame({("A", "w"): [2.0], ("B", "w"): [3.0]}), "A", "B", ["w"])
    overall = rows.set_index("workload").loc[stats.OVERALL]
    assert (overall["p_a_faster"], overall["p_ci_low"], overall["p_ci_high"]) == (1, 1, 1)


# -- paired tests --------------------------------------------------------------------------------
def wilcoxon_by_enumeration(d: list[float]) -> float:
    """Exact two-sided Wilcoxon signed-rank p-value: every one of the 2^n sign assignments of
    the ranks of |d| (no ties, no zeros) is equally likely under the null."""
    ranks = scipy.stats.rankdata(np.abs(d))
    observed = sum(r for r, x in zip(ranks, d, strict=True) if x > 0)
    sums = [
        sum(r for r, s in zip(ranks, signs, strict=True) if s)
        for signs in itertools.product([0, 1], repeat=len(d))
    ]
    low = sum(s <= observed for s in sums) / len(sums)
    high = sum(s >= observed for s in sums) / len(sums)
    return min(1.0, 2 * min(low, high))


def test_wilcoxon_on_log_times_when_every_pair_is_finite_and_untied():
    a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [1.5, 2.2, 2.5, 6.5, 9.0]
    test = stats.paired_test(a, b)
    assert test.test == "wilcoxon" and (test.a_faster, test.b_faster, test.tied) == (4, 1, 0)
    d = [math.log(x / y) for x, y in zip(a, b, strict=True)]
    assert test.p_value == pytest.approx(wilcoxon_by_enumeration(d))
    assert test.p_value == pytest.approx(2 * 3 / 32)  # W+ = 3 (rank of 3/2.5): 3 of 32 below


def test_sign_test_when_a_pair_has_a_miss_or_a_tie():
    a = [1.0, INF, 3.0, INF, 2.0, 5.0]
    b = [2.0, 4.0, 3.0, INF, 3.0, 6.0]
    test = stats.paired_test(a, b)
    assert test.test == "sign"
    assert (test.a_faster, test.b_faster, test.tied, test.misses) == (3, 1, 2, 1)
    # By hand: ties dropped, 3 of 4; P(K <= 1) + P(K >= 3) for K ~ Binomial(4, 1/2).
    assert test.p_value == pytest.approx((1 + 4 + 4 + 1) / 16)
    assert "1 pair(s) with one miss and 2 tied pair(s)" in test.describe()


@pytest.mark.parametrize(
    "a, b, kind, p",
    [
        ([1.0], [2.0], "wilcoxon", 1.0),  # n = 1
        ([1.0, 2.0], [2.0, 3.0], "wilcoxon", 0.5),  # n = 2: 2 of 4 sign patterns as extreme
        ([INF, INF], [INF, INF], "sign", 1.0),  # every pair tied: no evidence
        ([], [], "none", math.nan),
    ],
)
def test_paired_test_with_few_pairs(a, b, kind, p):
    test = stats.paired_test(a, b)
    assert test.test == kind
    assert test.p_value == pytest.approx(p, nan_ok=True)


def test_steps_are_tested_on_their_own_and_pairs_follow_the_study_number():
    times = {("A", "w"): [1.0, 2.0, 3.0, 4.0], ("B", "w"): [4.0, 3.0, 5.0, 7.0]}
    # A is faster in time in every study, but slower in steps in every one but study 1.
    steps = {("A", "w"): [100, 100, 100, 100], ("B", "w"): [50, 300, 40, 30]}
    frame = studies_frame(times, steps)
    b_reversed = pd.concat(
        [frame[frame["submission"] == "A"], frame[frame["submission"] == "B"][::-1]]
    )
    for shuffled in (frame, b_reversed):  # pairs by study number, not by row order
        rows = stats.compare(shuffled, "A", "B", ["w"], n_resamples=20)
        row = rows.set_index("workload").loc["w"]
        assert (row["a_faster_pairs"], row["b_faster_pairs"]) == (4, 0)
        assert row["test_time"] == "wilcoxon" and row["p_value_time"] == pytest.approx(2 / 16)
        # Steps: |log ratios| rank 1, 3, 2, 4 with A slower in ranks 1, 2, 4: W+ = 7; 5 of the
        # 16 sign patterns reach 7 or more, so p = 2 x 5/16.
        d = [math.log(100 / y) for y in steps[("B", "w")]]
        assert row["test_steps"] == "wilcoxon"
        assert row["p_value_steps"] == pytest.approx(wilcoxon_by_enumeration(d))
        assert row["p_value_steps"] == pytest.approx(10 / 16)


def test_pairs_are_the_studies_both_ran():
    # B lacks study 0: pairs are studies 1 and 2 (A faster in both), never A's 0 with B's 1.
    frame = studies_frame({("A", "w"): [9.0, 1.0, 2.0], ("B", "w"): [5.0, 3.0, 4.0]})
    frame = frame[~((frame["submission"] == "B") & (frame["study"] == 0))]
    row = stats.compare(frame, "A", "B", ["w"], n_resamples=20).set_index("workload").loc["w"]
    assert (row["pairs"], row["a_faster_pairs"], row["b_faster_pairs"]) == (2, 2, 0)
    assert (row["studies_a"], row["studies_b"]) == (3, 2)
    assert row["p_a_faster"] == pytest.approx(4 / 6)  # unpaired: 9 beats neither of 3, 4


# -- studies needed ------------------------------------------------------------------------------
def power_by_brute_force(pairs: int, win: float, tie: float, alpha: float) -> float:
    """Sum over every outcome (untied u, loser's wins k) of its probability where the exact
    sign test (p-value: the total probability of outcomes no more likely than k) rejects."""
    total = 0.0
    for u in range(pairs + 1):
        chance_u = math.comb(pairs, u) * (1 - tie) ** u * tie ** (pairs - u)
        null = [math.comb(u, j) / 2**u for j in range(u + 1)]
        for k in range(u + 1):
            p_value = sum(q for q in null if q <= null[k] * (1 + 1e-7))
            if p_value <= alpha and k < u / 2:  # the loser won few: rejects for the winner
                total += chance_u * math.comb(u, k) * (1 - win) ** k * win ** (u - k)
    return total


def needed_by_brute_force(win: float, tie: float, workloads: int) -> int:
    for n in range(1, 101):
        if power_by_brute_force(n * workloads, win, tie, 0.05) >= 0.8:
            return n
    return -1


@pytest.mark.parametrize(
    "counts, workloads, expected",
    [
        ((5, 0, 0), 1, 6),  # 2 / 2^6 = 0.031 <= 0.05 < 2 / 2^5: six all-won pairs
        ((5, 0, 0), 3, 2),  # overall: 2 studies x 3 workloads = 6 pairs
        ((0, 5, 5), 1, 15),  # half tie: P(Binomial(n, 1/2) >= 6) >= 0.8 first at n = 15
    ],
)
def test_studies_needed_by_hand(counts, workloads, expected):
    assert stats.studies_needed(*counts, workloads=workloads) == expected
    a, b, tied = counts
    assert needed_by_brute_force(max(a, b) / (a + b), tied / sum(counts), workloads) == expected


@pytest.mark.parametrize("counts, workloads", [((4, 1, 0), 1), ((2, 1, 1), 2), ((3, 1, 2), 3)])
def test_studies_needed_matches_brute_force(counts, workloads):
    a, b, tied = counts
    expected = needed_by_brute_force(max(a, b) / (a + b), tied / sum(counts), workloads)
    assert stats.studies_needed(*counts, workloads=workloads) == expected


def test_no_winner_needs_infinitely_many_studies():
    assert math.isinf(stats.studies_needed(2, 2, 1))
    assert math.isinf(stats.studies_needed(0, 0, 3))
    assert math.isinf(stats.studies_needed(11, 10, 0))  # over the cap of 100


def test_sign_test_rejection_region_is_scipys():
    untied = np.arange(1, 31)
    critical = stats.sign_test_critical(untied, 0.05)
    for u, c in zip(untied, critical, strict=True):
        rejects = [k for k in range(u + 1) if scipy.stats.binomtest(k, u).pvalue <= 0.05]
        assert [k for k in rejects if k < u / 2] == list(range(c + 1))


# -- aggregates ----------------------------------------------------------------------------------
def test_iqm_by_hand():
    assert stats.iqm(np.array([1, 2, 3, 4, 5, 6, 7, 100.0])) == 4.5  # mean of 3, 4, 5, 6
    assert stats.iqm(np.array([1, 2, 3, INF])) == 2.5  # the miss is cut
    assert stats.iqm(np.array([1, INF, INF, INF])) == INF  # a miss in the middle half


def test_normalised_times_by_hand():
    frame = studies_frame(
        {("A", "w1"): [2.0, 4.0], ("B", "w1"): [9.0, INF], ("A", "w2"): [10.0], ("B", "w2"): [30.0]}
        | {("A", "none"): [INF], ("B", "none"): [INF]}
    )
    got = stats.normalised_times(frame).set_index(["submission", "workload", "study"])["normalised"]
    # w1: median of 2, 4, 9 = 4 (their mean is 5); w2: median of 10, 30 = 20; "none": nobody
    # reached.
    expected = {
        ("A", "w1", 0): 0.5, ("A", "w1", 1): 1.0, ("B", "w1", 0): 2.25, ("B", "w1", 1): INF,
        ("A", "w2", 0): 0.5, ("B", "w2", 0): 1.5, ("A", "none", 0): INF, ("B", "none", 0): INF,
    }  # fmt: skip
    assert got.to_dict() == expected


@pytest.mark.parametrize("statistic", stats.AGGREGATES)
def test_aggregate_interval_is_the_exact_stratified_bootstrap(statistic):
    # Reference: w1 median(1, 13, 2) = 2 (the miss left out), w2 median(1, 3, 13) = 3.
    frame = studies_frame(
        {("A", "w1"): [INF, 1.0, 13.0], ("A", "w2"): [1.0, 3.0]}
        | {("B", "w1"): [2.0], ("B", "w2"): [13.0]}
    )
    strata = [[INF, 0.5, 6.5], [1 / 3, 1.0]]  # A's normalised times
    reduce = {"median": np.median, "iqm": stats.iqm}[statistic]
    outcomes: dict[float, int] = {}
    for x in itertools.product(strata[0], repeat=3):
        for y in itertools.product(strata[1], repeat=2):
            value = round(float(reduce(np.array(x + y))), 12)
            outcomes[value] = outcomes.get(value, 0) + 1
    exact = sorted(outcomes.items())
    (low, m1), (high, m2) = (exact_quantile(exact, q) for q in (0.025, 0.975))
    assert min(m1, m2) > 0.01
    got = stats.aggregate(frame, ["A", "B"], statistic, n_resamples=4000, seed=1)
    a = got.set_index("submission").loc["A"]
    assert a["value"] == pytest.approx(float(reduce(np.concatenate(strata))))
    assert (a["ci_low"], a["ci_high"]) == pytest.approx((low, high))
    assert (a["workloads"], a["studies"]) == (2, 5)


# -- the n < 3 warning ---------------------------------------------------------------------------
def test_small_n_warning():
    assert "n = 2" in stats.small_n_warning(np.array([[3, 2], [3, 3]]))
    assert "n = 1" in stats.small_n_warning(np.array([[1, 2]]))
    assert stats.small_n_warning(np.array([[3, 5], [0, 3]])) == ""  # 0: never ran, shown "—"


# -- the command line ----------------------------------------------------------------------------
CLI_TIMES = {  # per-study time of each study's best trial; None = not reached
    ("adamw", "digits"): [10.0, 12.0, 11.0],
    ("lion", "digits"): [8.0, None, 9.0],
    ("sgd", "digits"): [None, None, 30.0],
    ("adamw", "friedman"): [20.0, 22.0, 21.0],
    ("lion", "friedman"): [40.0, 35.0, 50.0],
    ("sgd", "friedman"): [25.0, 19.0, 30.0],
}
FAST = ["--no-figures", "--resamples", "200"]


def test_compare_prints_one_quotable_paragraph(tmp_path, capsys):
    write_study_grid(tmp_path, CLI_TIMES, ruleset="self")
    assert cli.main([str(tmp_path), *FAST, "--compare", "lion", "adamw"]) == 0
    out = capsys.readouterr().out
    paragraph = out.split("\nwrote ")[0]
    assert "\n" not in paragraph.strip() and "| rank |" not in out
    # By hand: digits, lion beats 3 of 3 adamw studies twice and none once: 6/9; friedman 0.
    assert paragraph.startswith(
        "On 2 workloads × 3 studies, lion reached the targets faster than adamw with "
        "probability 0.33 ["
    )
    assert "per workload: digits 0.67 [" in paragraph and "friedman 0.00 [0.00, 0.00]" in paragraph
    # Paired: lion faster in studies 0 and 2 of digits, adamw in the other 4 (one a miss):
    # sign test, P(K <= 2) + P(K >= 4) for K ~ Binomial(6, 1/2) = 44/64.
    assert "paired sign test" in paragraph and "p = 0.69 (n = 6 pairs" in paragraph
    assert "lion faster in 2, adamw in 4, 0 tied" in paragraph
    needed = needed_by_brute_force(4 / 6, 0.0, 2)
    assert f"about {needed} studies per workload would separate them at the 95 % level" in paragraph

    pairs = pd.read_csv(tmp_path / "report" / "pairwise.csv")
    assert len(pairs) == 3 * 3  # 3 pairs x (2 workloads + overall)
    row = pairs[(pairs["submission_a"] == "adamw") & (pairs["workload"] == "overall")]
    assert set(row["submission_b"]) == {"lion", "sgd"}
    assert "## Leaderboard: ruleset " in (tmp_path / "report" / "statistics.md").read_text()


def test_compare_unknown_name_is_one_paragraph_listing_the_known_ones(tmp_path, capsys):
    write_study_grid(tmp_path, CLI_TIMES, ruleset="self")
    assert cli.main([str(tmp_path), *FAST, "--compare", "lion", "adam"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.count("\n") == 1
    assert "names adam, which has no runs" in captured.err
    assert "adamw, lion, sgd" in captured.err
    assert not (tmp_path / "report").exists()  # stopped before writing anything


def test_markdown_table_warns_when_a_cell_has_fewer_than_3_studies(tmp_path, capsys):
    two = {cell: times[:2] for cell, times in CLI_TIMES.items()}
    write_study_grid(tmp_path / "two", two, ruleset="self")
    write_study_grid(tmp_path / "three", CLI_TIMES, ruleset="self")
    for name in ("two", "three"):
        assert cli.main([str(tmp_path / name), *FAST]) == 0
    capsys.readouterr()
    assert (
        "**Warning: 6 cell(s) rest on fewer than 3 studies (n = 2).**"
        in (tmp_path / "two" / "report" / "leaderboard.md").read_text()
    )
    assert "Warning" not in (tmp_path / "three" / "report" / "leaderboard.md").read_text()


def test_statistics_use_the_leaderboards_bootstrap_settings():
    a_times = [1.0, 2.5, 4.0, 5.5, 7.0, 8.5, 10.0, 11.5]
    frame = studies_frame({("A", "w"): a_times, ("B", "w"): [t + 1.5 for t in a_times[::-1]]})
    board = scoring.Leaderboard(
        submissions=["A", "B"], workloads=["w"], times=np.zeros((2, 1)),
        times_ci=np.zeros((2, 2, 1)), steps=np.zeros((2, 1)), n_studies=np.full((2, 1), 8),
        n_reached=np.full((2, 1), 8), scores=np.zeros(2), scores_ci=np.zeros((2, 2)),
        other_scores={}, speedup=None, speedup_ci=None, speedup_workloads=None, studies=frame,
        settings=scoring.Settings(n_resamples=300, confidence=0.9, seed=7),
        scored_workloads=["w"],
    )  # fmt: skip
    pairs, aggregates = stats.of_leaderboard(board)
    direct = stats.compare(frame, "A", "B", ["w"], n_resamples=300, confidence=0.9, seed=7)
    pd.testing.assert_frame_equal(pairs, direct)
    other_seed = stats.compare(frame, "A", "B", ["w"], n_resamples=300, confidence=0.9, seed=0)
    assert not other_seed[["p_ci_low", "p_ci_high"]].equals(direct[["p_ci_low", "p_ci_high"]])
    assert set(aggregates["statistic"]) == {"median", "iqm"}


def test_compare_across_leaderboards_is_refused(tmp_path, capsys):
    write_study_grid(tmp_path, {("lion", "digits"): [8.0, 9.0, 7.0]}, ruleset="self")
    write_study_grid(tmp_path, {("adamw", "digits"): [9.0, 8.0, 10.0]}, ruleset="fixed")
    assert cli.main([str(tmp_path), *FAST, "--compare", "lion", "adamw"]) == 2
    captured = capsys.readouterr()
    assert "have no finished studies on a common workload of one leaderboard" in captured.err
    assert "On " not in captured.out
