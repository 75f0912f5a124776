"""Statistics for claims (docs/design.md, "Scoring"): is submission A faster than B? The
probability of being faster with stratified-bootstrap intervals, paired tests on per-study times,
the number of studies that would separate two submissions, and aggregate intervals (median, IQM).

Pure functions of the per-study times of each study's best trial (scoring.best_trials; misses
are inf). Never reads files, the clock or torch, and never writes anything.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats

from harness.report.scoring import Leaderboard, interval

POWER = 0.8  # the chance of separating two submissions that "studies needed" plans for
STUDIES_CAP = 100  # "studies needed" searches up to this many studies per workload
OVERALL = "overall"  # the `workload` of the rows that pool every workload
AGGREGATES = ("median", "iqm")


# -- the statistics ------------------------------------------------------------------------------
def probability_faster(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(X_a < X_b) over every pair of a study of A and a study of B (unpaired), ties counted
    half, inf (a miss) slower than any time and tied with another miss. Works on the last axis,
    so [R, n] and [R, m] resamples give [R] probabilities; NaN where a side has no study."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape[-1] == 0 or b.shape[-1] == 0:
        return np.full(np.broadcast_shapes(a.shape[:-1], b.shape[:-1]), np.nan)
    x, y = a[..., :, None], b[..., None, :]
    return ((x < y) + 0.5 * (x == y)).mean(axis=(-2, -1))


@dataclass(frozen=True)
class PairedTest:
    """A paired test of study k of A against study k of B (they share the study's seed)."""

    test: str  # "wilcoxon", "sign" or "none" (no pairs)
    p_value: float  # two-sided; NaN with no pairs
    pairs: int
    a_faster: int
    b_faster: int
    tied: int  # equal times, or both missed
    misses: int  # pairs where exactly one side missed

    def describe(self) -> str:
        if self.test == "wilcoxon":
            return "paired Wilcoxon signed-rank test on per-study log times"
        if self.test == "sign":
            why = [f"{self.misses} pair(s) with one miss"] if self.misses else []
            why += [f"{self.tied} tied pair(s)"] if self.tied else []
            return (
                f"paired sign test (exact binomial; not the Wilcoxon signed-rank test, as "
                f"{' and '.join(why)} give no finite, non-zero difference to rank)"
            )
        return "no paired test (no study ran for both)"


def paired_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """Wilcoxon signed-rank on log(t_a / t_b) when every pair has two finite, different times;
    otherwise the sign test (exact binomial on the untied pairs), which needs only who was faster:
    a miss has no time, so its difference has no size to rank, and zero differences make the
    Wilcoxon test's exact distribution unavailable."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a_faster, b_faster = int((a < b).sum()), int((b < a).sum())
    tied = len(a) - a_faster - b_faster
    misses = int((np.isinf(a) != np.isinf(b)).sum())
    counts = dict(pairs=len(a), a_faster=a_faster, b_faster=b_faster, tied=tied, misses=misses)
    if len(a) == 0:
        return PairedTest("none", math.nan, **counts)
    if misses or tied:
        return PairedTest("sign", sign_test_p(a_faster, a_faster + b_faster), **counts)
    p = scipy.stats.wilcoxon(np.log(a) - np.log(b)).pvalue
    return PairedTest("wilcoxon", float(p), **counts)


@functools.cache
def sign_test_p(wins: int, untied: int) -> float:
    """Two-sided exact sign test (binomial, p = 1/2) of `wins` of `untied` pairs; 1 if none."""
    return float(scipy.stats.binomtest(wins, untied, 0.5).pvalue) if untied else 1.0


def sign_test_critical(untied: np.ndarray, alpha: float) -> np.ndarray:
    """For each number of untied pairs u: the largest count k of the loser's wins for which the
    exact two-sided sign test rejects, i.e. 2 P(K <= k) <= alpha for K ~ Binomial(u, 1/2);
    -1 where no count rejects."""
    untied = np.asarray(untied)
    half = alpha / 2 * (1 + 1e-9)  # the test's own tolerance for ties in probability
    guess = scipy.stats.binom.ppf(alpha / 2, untied, 0.5)  # may be one off by rounding
    critical = np.full(untied.shape, -1)
    for k in (guess - 1, guess, guess + 1):
        ok = (k >= 0) & (scipy.stats.binom.cdf(k, untied, 0.5) <= half)
        critical = np.where(ok, np.maximum(critical, k), critical)
    return critical.astype(int)


@functools.cache
def _critical_table(max_untied: int, alpha: float) -> np.ndarray:
    return sign_test_critical(np.arange(max_untied + 1), alpha)


def _reject_chance(max_untied: int, win: float, alpha: float) -> np.ndarray:
    """[u]: the chance that the sign test on u untied pairs rejects for the winner."""
    untied = np.arange(max_untied + 1)
    critical = _critical_table(max_untied, alpha)
    return np.where(critical >= 0, scipy.stats.binom.cdf(critical, untied, 1 - win), 0.0)


def _power(pairs: np.ndarray, reject: np.ndarray, tie: float) -> np.ndarray:
    untied = np.arange(int(pairs.max(initial=0)) + 1)
    chance = scipy.stats.binom.pmf(untied[None, :], pairs[:, None], 1 - tie)  # of u untied
    return (chance * reject[: len(untied)]).sum(axis=1)


def sign_test_power(pairs: Sequence[int], win: float, tie: float, alpha: float) -> np.ndarray:
    """For each number of pairs: the chance that an exact two-sided sign test at level `alpha`
    rejects in the winner's direction, when each pair is a tie with probability `tie` (ties are
    dropped, as the test does) and an untied pair goes to the winner with probability `win`."""
    pairs = np.asarray(pairs)
    return _power(pairs, _reject_chance(int(pairs.max(initial=0)), win, alpha), tie)


@functools.cache  # a report asks the same few (wins, losses, ties) for many pairs
def studies_needed(
    a_faster: int,
    b_faster: int,
    tied: int,
    workloads: int = 1,
    confidence: float = 0.95,
    power: float = POWER,
    cap: int = STUDIES_CAP,
) -> float:
    """Studies per workload (n, so n x `workloads` pairs) for which the sign test at level
    1 - confidence separates A and B with probability `power`, at the observed effect: a pair
    ties with the observed rate, and an untied pair goes to the observed winner with the observed
    rate. inf when the observation shows no winner (or more than `cap` studies are needed)."""
    untied = a_faster + b_faster
    if untied == 0 or a_faster == b_faster:
        return math.inf
    win = max(a_faster, b_faster) / untied
    tie = tied / (untied + tied)
    reject = _reject_chance(cap * workloads, win, 1 - confidence)
    for first in range(1, cap + 1, 10):  # in blocks: a clear winner needs few studies
        studies = np.arange(first, min(first + 10, cap + 1))
        enough = np.nonzero(_power(studies * workloads, reject, tie) >= power)[0]
        if len(enough):
            return float(studies[enough[0]])
    return math.inf


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle half (25 % cut from each end); inf when a miss
    is in the middle half."""
    return scipy.stats.trim_mean(values, 0.25, axis=axis)


STATISTICS = {"median": lambda v: np.median(v, axis=-1), "iqm": iqm}


# -- the bootstrap -------------------------------------------------------------------------------
def stream(seed: int, *names: str) -> np.random.Generator:
    """One random stream per (seed, names): a pair's intervals do not move when another
    submission is added, and the same seed gives the same intervals on any machine."""
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def resample(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[n_resamples, len(values)]: draws with replacement (a stratum of the stratified
    bootstrap: the caller resamples each workload's studies separately)."""
    values = np.asarray(values, dtype=float)
    return values[rng.integers(0, len(values), size=(n_resamples, len(values)))]


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[n_resamples, n]: how often each of n studies is drawn in each resample (the draws of
    resample(), counted)."""
    picks = rng.integers(0, n, size=(n_resamples, n))
    flat = picks + n * np.arange(n_resamples)[:, None]
    return np.bincount(flat.ravel(), minlength=n_resamples * n).reshape(n_resamples, n)


def resampled_probability(
    a: np.ndarray, b: np.ndarray, counts_a: np.ndarray, counts_b: np.ndarray
) -> np.ndarray:
    """probability_faster() of every resample of a and of b (resample_counts(): each side
    drawn on its own). A resample only reweights the pairs, so P = counts_a . S . counts_b /
    (n m), where S holds each pair's 1 / 0.5 / 0: a matrix product, not a comparison of every
    drawn pair."""
    score = (a[:, None] < b[None, :]) + 0.5 * (a[:, None] == b[None, :])
    # einsum, not @: these products are small, and a multi-threaded BLAS on a busy machine
    # makes each one twenty times slower than one thread.
    weighted = np.einsum("ij,jk->ik", counts_a, score)
    return np.einsum("ik,ik->i", weighted, counts_b) / (len(a) * len(b))


# -- comparing submissions -----------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One submission's studies on one workload, by study number; inf = a miss."""

    study: np.ndarray
    time: np.ndarray
    steps: np.ndarray
    counts: np.ndarray  # [resamples, studies]: the cell's bootstrap draws (resample_counts)


def cells(
    studies: pd.DataFrame, n_resamples: int = 2000, seed: int = 0
) -> dict[tuple[str, str], Cell]:
    """Every (submission, workload) of a best_trials() frame, split once, with its bootstrap
    draws from its own stream (the same draws in every pair it is part of)."""
    studies = studies.sort_values("study")
    time = studies["time_to_target"].to_numpy(dtype=float)
    steps = studies["steps_to_target"].to_numpy(dtype=float)
    steps = np.where(np.isfinite(time) & ~np.isnan(steps), steps, np.inf)
    found = {}
    for key, rows in studies.groupby(["submission", "workload"], sort=False).indices.items():
        draws = resample_counts(len(rows), n_resamples, stream(seed, *key, "studies"))
        draws = draws.astype(float)
        found[key] = Cell(studies["study"].to_numpy()[rows], time[rows], steps[rows], draws)
    return found


def compare(
    studies: pd.DataFrame | dict[tuple[str, str], Cell],
    a: str,
    b: str,
    workloads: Sequence[str],
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    pooled: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per workload (both submissions have studies there) and one OVERALL row over the
    `pooled` ones (default: all; a leaderboard pools its scored workloads, not held-out
    variants): the probability that A is faster and its stratified-bootstrap interval, the
    paired tests on time and on steps, and the studies per workload needed to separate them.
    `studies`: a best_trials() frame, or its cells() (which fix the resamples and seed)."""
    if isinstance(studies, pd.DataFrame):
        studies = cells(studies, n_resamples, seed)
    rows, resampled, pairs = [], [], {"time": [], "steps": []}
    for workload in workloads:
        x, y = studies.get((a, workload)), studies.get((b, workload))
        if x is None or y is None:
            continue
        draws = resampled_probability(x.time, y.time, x.counts, y.counts)
        resampled.append(draws)
        _, i, j = np.intersect1d(x.study, y.study, return_indices=True)  # study k with study k
        pairs["time"].append(np.stack([x.time[i], y.time[j]], axis=1))
        pairs["steps"].append(np.stack([x.steps[i], y.steps[j]], axis=1))
        rows.append(
            _row(
                workload,
                [workload],
                float(probability_faster(x.time, y.time)),
                draws,
                {u: p[-1] for u, p in pairs.items()},
                confidence,
                studies=(len(x.time), len(y.time)),
            )
        )
    keep = [k for k, r in enumerate(rows) if pooled is None or r["workload"] in pooled]
    if keep:
        used = [rows[k]["workload"] for k in keep]
        together = {u: np.concatenate([p[k] for k in keep]) for u, p in pairs.items()}
        point = float(np.mean([rows[k]["p_a_faster"] for k in keep]))
        draws = np.mean([resampled[k] for k in keep], axis=0)
        overall = _row(OVERALL, used, point, draws, together, confidence)
        overall["studies_a"] = int(sum(rows[k]["studies_a"] for k in keep))
        overall["studies_b"] = int(sum(rows[k]["studies_b"] for k in keep))
        rows.append(overall)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame.insert(0, "submission_b", b)
        frame.insert(0, "submission_a", a)
    return frame


def _row(workload, used, point, draws, pairs, confidence, studies=(0, 0)) -> dict:
    low, high = interval(draws, confidence)
    tests = {u: paired_test(p[:, 0], p[:, 1]) for u, p in pairs.items()}
    time = tests["time"]
    return {
        "workload": workload,
        "workloads": len(used),
        "studies_a": studies[0],
        "studies_b": studies[1],
        "p_a_faster": point,
        "p_ci_low": float(low),
        "p_ci_high": float(high),
        "pairs": time.pairs,
        "a_faster_pairs": time.a_faster,
        "b_faster_pairs": time.b_faster,
        "tied_pairs": time.tied,
        "miss_pairs": time.misses,
        "test_time": time.test,
        "p_value_time": time.p_value,
        "test_steps": tests["steps"].test,
        "p_value_steps": tests["steps"].p_value,
        "studies_needed": studies_needed(
            time.a_faster, time.b_faster, time.tied, len(used), confidence
        ),
    }


def pairwise(
    studies: pd.DataFrame,
    submissions: Sequence[str],
    workloads: Sequence[str],
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    pooled: Sequence[str] | None = None,
) -> pd.DataFrame:
    """compare() for every pair of submissions, in the given order (A before B)."""
    split = cells(studies, n_resamples, seed)
    frames = [
        compare(split, a, b, workloads, n_resamples, confidence, seed, pooled)
        for i, a in enumerate(submissions)
        for b in submissions[i + 1 :]
    ]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def normalised_times(studies: pd.DataFrame) -> pd.DataFrame:
    """`studies` with column `normalised`: the study's time divided by its workload's reference,
    the median of every finite study time on that workload (all submissions); inf for a miss,
    and for every study of a workload that nobody reached."""
    finite = studies["time_to_target"].where(np.isfinite(studies["time_to_target"]))
    reference = finite.groupby(studies["workload"]).transform("median")
    normalised = (studies["time_to_target"] / reference).where(
        np.isfinite(studies["time_to_target"]) & reference.notna(), np.inf
    )
    return studies.assign(normalised=normalised)


def aggregate(
    studies: pd.DataFrame,
    submissions: Sequence[str],
    statistic: str = "median",
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per submission: `statistic` (median or iqm) of its normalised times pooled over every
    study of every workload, with a stratified-bootstrap interval (each workload's studies
    resampled separately, as rliable does). Lower is faster; inf when misses fill the middle."""
    if statistic not in STATISTICS:
        raise ValueError(f"unknown aggregate {statistic!r}; choose {', '.join(AGGREGATES)}")
    reduce = STATISTICS[statistic]
    studies = normalised_times(studies)
    rows = []
    for submission in submissions:
        mine = studies[studies["submission"] == submission]
        strata = [g["normalised"].to_numpy() for _, g in mine.groupby("workload", sort=True)]
        if not strata:
            continue
        draws = np.concatenate(
            [
                resample(values, n_resamples, stream(seed, submission, workload, statistic))
                for (workload, _), values in zip(
                    mine.groupby("workload", sort=True), strata, strict=True
                )
            ],
            axis=1,
        )
        low, high = interval(reduce(draws), confidence)
        rows.append(
            {
                "submission": submission,
                "statistic": statistic,
                "value": float(reduce(np.concatenate(strata))),
                "ci_low": float(low),
                "ci_high": float(high),
                "workloads": len(strata),
                "studies": int(sum(len(s) for s in strata)),
            }
        )
    return pd.DataFrame(rows)


# -- text ----------------------------------------------------------------------------------------
def small_n_warning(n_studies: np.ndarray) -> str:
    """A visible line for a table with a cell of one or two studies; '' when none."""
    n = np.asarray(n_studies)
    few = n[(n > 0) & (n < 3)]
    if not len(few):
        return ""
    return (
        f"**Warning: {len(few)} cell(s) rest on fewer than 3 studies (n = {int(few.min())}).** "
        "Medians, intervals and tests from so few studies are not evidence of a difference; "
        "run at least 3 studies per submission and workload (AlgoPerf runs 5)."
    )


def _percent(value: float) -> str:
    return f"{value:.0%}".replace("%", " %")


def _p(value: float) -> str:
    if math.isnan(value):
        return "—"
    if value < 0.001:
        return "p < 0.001"
    return f"p = {value:.3f}" if value < 0.1 else f"p = {value:.2f}"


def _studies_text(low: int, high: int) -> str:
    return f"{low}" if low == high else f"{low}–{high}"


def _needed_text(row: pd.Series, confidence: float) -> str:
    level = _percent(confidence)
    if row["a_faster_pairs"] + row["b_faster_pairs"] == 0 or (
        row["a_faster_pairs"] == row["b_faster_pairs"]
    ):
        return (
            "the paired studies show no winner, so no number of studies would separate them at "
            "this effect"
        )
    if math.isinf(row["studies_needed"]):
        return (
            f"at the observed effect more than {STUDIES_CAP} studies per workload would be "
            f"needed to separate them at the {level} level"
        )
    return (
        f"at the observed effect about {int(row['studies_needed'])} studies per workload would "
        f"separate them at the {level} level (exact sign test, {_percent(POWER)} power)"
    )


def _paired_text(overall: pd.Series, a: str, b: str) -> str:
    time = PairedTest(
        test=overall["test_time"],
        p_value=overall["p_value_time"],
        pairs=int(overall["pairs"]),
        a_faster=int(overall["a_faster_pairs"]),
        b_faster=int(overall["b_faster_pairs"]),
        tied=int(overall["tied_pairs"]),
        misses=int(overall["miss_pairs"]),
    )
    if time.test == "none":
        return "no study ran for both, so there is no paired test"
    return (
        f"{time.describe()}, study k of each paired (same seed): {_p(time.p_value)} "
        f"(n = {time.pairs} pair{'s' if time.pairs != 1 else ''}; {a} faster in "
        f"{time.a_faster}, {b} in {time.b_faster}, "
        f"{time.tied} tied); on steps-to-target ({overall['test_steps']}): "
        f"{_p(overall['p_value_steps'])}"
    )


def paragraph(rows: pd.DataFrame, confidence: float, n_resamples: int) -> str:
    """The comparison of A with B (rows from compare()) in one paragraph a paper can quote."""
    a, b = rows["submission_a"].iloc[0], rows["submission_b"].iloc[0]
    overall = rows[rows["workload"] == OVERALL].iloc[0]
    cells = rows[rows["workload"] != OVERALL]
    n_workloads = int(overall["workloads"])
    counts = np.concatenate([cells["studies_a"], cells["studies_b"]]).astype(int)
    level = _percent(confidence)
    plural = "ies" if counts.max() != 1 else "y"
    text = (
        f"On {n_workloads} workload{'s' if n_workloads != 1 else ''} × "
        f"{_studies_text(counts.min(), counts.max())} stud{plural}, {a} reached the targets "
        f"faster than {b} with probability {overall['p_a_faster']:.2f} "
        f"[{overall['p_ci_low']:.2f}, {overall['p_ci_high']:.2f}] (the chance that a study of {a} "
        f"is faster than one of {b} on the same workload, ties counted half, averaged over "
        f"workloads; {level} stratified bootstrap over studies, {n_resamples} resamples)"
    )
    if len(cells) > 1:
        text += "; per workload: " + ", ".join(
            f"{r.workload} {r.p_a_faster:.2f} [{r.p_ci_low:.2f}, {r.p_ci_high:.2f}]"
            for r in cells.itertuples()
        )
    text += "; " + _paired_text(overall, a, b)
    if overall["pairs"]:
        text += "; " + _needed_text(overall, confidence)
    if counts.min() < 3:
        text += (
            f". Caution: some cells have only {counts.min()} "
            f"stud{'ies' if counts.min() != 1 else 'y'}; intervals and tests from so few "
            "studies are not evidence"
        )
    return text + "."


# -- a leaderboard's statistics ------------------------------------------------------------------
def of_leaderboard(board: Leaderboard) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every pair of its submissions on every workload and overall, the median and IQM
    aggregates of every submission), with the leaderboard's bootstrap settings."""
    s = board.settings
    boot = dict(n_resamples=s.n_resamples, confidence=s.confidence, seed=s.seed)
    pairs = pairwise(
        board.studies, board.submissions, board.workloads, pooled=board.scored_workloads, **boot
    )
    aggregates = pd.concat(
        [aggregate(board.studies, board.submissions, how, **boot) for how in AGGREGATES],
        ignore_index=True,
    )
    return pairs, aggregates


def _bracket(value: float, low: float, high: float) -> str:
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def markdown(title: str, board: Leaderboard, pairs: pd.DataFrame, aggregates: pd.DataFrame) -> str:
    """The short statistics.md section of one leaderboard: the pairs overall, the aggregates."""
    level = _percent(board.settings.confidence)
    lines = [f"## {title}", ""]
    warning = small_n_warning(board.n_studies)
    if warning:
        lines += [warning, ""]
    overall = pairs[pairs["workload"] == OVERALL] if not pairs.empty else pairs
    if not overall.empty:
        lines += [
            f"| A | B | P(A faster) [{level}] | paired test | p (time) | p (steps) | "
            "studies needed per workload |",
            "|---|---|---:|---|---:|---:|---:|",
        ]
        for r in overall.itertuples():
            needed = "—" if math.isinf(r.studies_needed) else f"{r.studies_needed:.0f}"
            lines.append(
                f"| {r.submission_a} | {r.submission_b} | "
                f"{_bracket(r.p_a_faster, r.p_ci_low, r.p_ci_high)} | {r.test_time} | "
                f"{_p(r.p_value_time).removeprefix('p = ')} | "
                f"{_p(r.p_value_steps).removeprefix('p = ')} | {needed} |"
            )
        lines.append("")
    table = aggregates.pivot(index="submission", columns="statistic")
    lines += [
        f"Aggregate normalised time ({level} stratified bootstrap intervals; lower is faster):",
        "",
        "| submission | median | IQM | workloads | studies |",
        "|---|---:|---:|---:|---:|",
    ]
    for submission in [s for s in board.submissions if s in table.index]:
        row = table.loc[submission]
        cells = [
            _bracket(*(row[c, how] for c in ("value", "ci_low", "ci_high"))) for how in AGGREGATES
        ]
        lines.append(
            f"| {submission} | {' | '.join(cells)} | {int(row['workloads', 'median'])} | "
            f"{int(row['studies', 'median'])} |"
        )
    return "\n".join(lines) + "\n"


def header(confidence: float) -> str:
    """The head of statistics.md: what each column means."""
    return (
        "# Statistics\n\n"
        "Generated by `python -m harness.report` from the per-study times of each study's best "
        'trial (docs/design.md, "Scoring"). P(A faster): the chance that a study of A reaches '
        "the target before a study of B on the same workload (ties half, a miss slower than any "
        "time), averaged over workloads, with a stratified bootstrap interval (studies resampled "
        "within each workload). Paired test: study k of A against study k of B; the Wilcoxon "
        "signed-rank test on log times when every pair has two finite, different times, else "
        "the exact sign test. Studies needed: per workload, for an exact sign test at the "
        f"{_percent(confidence)} level to separate them with {_percent(POWER)} chance at the "
        f"observed effect (—: no winner observed, or over {STUDIES_CAP}). Normalised time: a "
        "study's time over the median of every finite study time on its workload. Every pair and "
        "workload is in pairwise.csv; `python -m harness.report DIR --compare A B` says it in a "
        "paragraph.\n\n"
    )
