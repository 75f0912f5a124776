"""Leaderboard tables: Markdown for a README or an issue, LaTeX (booktabs) for a paper, and
CSV for anything else. Every table names its hardware and its n.

Formats numbers that scoring.py computed; never computes a score itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.report.scoring import UNITS, Leaderboard, Settings
from harness.report.stats import small_n_warning

# A bootstrap interval over fewer studies than this says nothing (with 2 studies it is the two
# values themselves): tables show none and say so; the CSV files keep every number.
MIN_STUDIES_FOR_INTERVAL = 3


@dataclass
class TableContext:
    """What a table must say about its runs besides the numbers."""

    number: int
    experiment: str
    ruleset: str
    hardware: list[tuple[str, int]]  # fingerprint, number of runs
    n_runs: int
    trials_per_study: str  # "1", "5", or "1-5" when they differ
    targets: dict[str, tuple[str, float, bool]]  # workload -> (metric, value, lower is better)
    incomplete: set[tuple[str, str]] = field(default_factory=set)  # (submission, workload)
    problems: list[str] = field(default_factory=list)
    ended: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)  # diverged/failed
    disturbed: set[tuple[str, str]] = field(default_factory=set)  # a best trial was disturbed
    pooled: str = ""  # how runs from the machines in `hardware` were pooled (scoring.POOLED)
    name: str = ""  # among several leaderboards, what tells this one apart (file suffixes)
    experiments: list[str] = field(default_factory=list)  # every experiment pooled here
    sweeps: list[str] = field(default_factory=list)  # "experiment (folder): N runs", if several
    names: dict[str, str] = field(default_factory=dict)  # display names (--names)
    ranks: dict[str, int] = field(default_factory=dict)  # rank by score, whatever the row order

    def display_name(self, name: str) -> str:
        """The name to print for a submission or workload (--names; the name itself if none)."""
        return self.names.get(name, name)

    def label(self) -> str:
        return self.name or str(self.number)

    def rank(self, board: Leaderboard, i: int) -> int:
        return self.ranks.get(board.submissions[i], i + 1)

    def title(self) -> str:
        head = f"Leaderboard {self.name}" if self.name else "Leaderboard"
        experiments = self.experiments or [self.experiment]
        noun = "experiments" if len(experiments) > 1 else "experiment"
        return f"{head}: ruleset {self.ruleset}, {noun} {', '.join(experiments)}"

    def hardware_text(self) -> str:
        if len(self.hardware) == 1 and not self.pooled:
            return self.hardware[0][0]
        machines = "; ".join(f"{name} ({count} runs)" for name, count in self.hardware)
        return f"{self.pooled} {machines}" if self.pooled else machines

    def studies_text(self, board: Leaderboard) -> str:
        low, high = int(board.n_studies.min()), int(board.n_studies.max())
        studies = f"{low}" if low == high else f"{low}-{high}"
        trials = "trial" if self.trials_per_study == "1" else "trials"
        return (
            f"n = {studies} studies per submission and workload, {self.trials_per_study} "
            f"{trials} per study, {self.n_runs} runs"
        )

    def pooled_text(self) -> str:
        """'' unless runs of several sweeps (experiments, results folders) are pooled here."""
        if len(self.sweeps) < 2:
            return ""
        return f"Pooled from {len(self.sweeps)} sweeps: {'; '.join(self.sweeps)}."

    def target_text(self, workload: str) -> str:
        if workload not in self.targets:  # a declared workload nobody ran
            return "(no runs)"
        metric, value, lower = self.targets[workload]
        return f"{metric} {'≤' if lower else '≥'} {value:g}"


# -- numbers -------------------------------------------------------------------------------------
def format_time(seconds: float, unit: str = "seconds") -> str:
    if not math.isfinite(seconds):
        return "∞"
    if unit == "steps":
        return f"{seconds:.0f}"
    if seconds >= 100:
        return f"{seconds:.0f}"
    if seconds >= 10:
        return f"{seconds:.1f}"
    return f"{seconds:.2f}"


def format_interval(low: float, high: float, fmt=format_time) -> str:
    return f"[{fmt(low)}, {fmt(high)}]"


def format_score(value: float, method: str = "exact") -> str:
    """Three decimals; four with AlgoPerf's discretisation, as AlgoPerf publishes its scores."""
    return f"{value:.4f}" if method == "algoperf" else f"{value:.3f}"


def format_speedup(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.2f}×"


BEST_TRIAL_TEXT = {
    "fastest": "fastest trial",
    "algoperf": "best trial by AlgoPerf's rule (the earliest evaluation that met the target; "
    "ties: the faster, then the lower trial number)",
}


def rules_text(board: Leaderboard) -> str:
    """What the score averages over, and the held-out rule when it applies; '' when neither
    differs from the plain rule (every workload in the table counts)."""
    parts = []
    if board.variants:
        pairs = ", ".join(f"{v} → {b}" for v, b in sorted(board.variants.items()))
        parts.append(
            f"Held-out rule (AlgoPerf): a workload counts as ∞ for a submission whose held-out "
            f"variant missed its target or took over τ_max × the best time on it ({pairs}); "
            "the variants' own columns do not count."
        )
    if board.variants or set(board.scored_workloads) != set(board.workloads):
        parts.append(
            f"The score and 'reached' are over the benchmark's {len(board.scored_workloads)} "
            f"workloads: {', '.join(board.scored_workloads)}."
        )
    return " ".join(parts)


def method_text(settings: Settings) -> str:
    """What every leaderboard of a report shares: how the score, the times and the intervals
    are computed (said once at the top of leaderboard.md)."""
    s = settings
    how = (
        "exact integral of the performance profile"
        if s.method == "exact"
        else "AlgoPerf discretisation: 100 evenly spaced τ, trapezoid rule"
    )
    return (
        f"Score: benchmark score (τ_max = {s.tau_max:g}, {how}; 1 = fastest on every workload, "
        f"0 = never within τ_max of the fastest). "
        f"Times: median over studies of each study's {BEST_TRIAL_TEXT[s.best_trial]}, in "
        f"{UNITS[s.unit][1]}. Brackets: {s.confidence:.0%} bootstrap intervals over studies "
        f"({s.n_resamples} resamples, seed {s.seed}), shown where a cell has "
        f"{MIN_STUDIES_FOR_INTERVAL} or more studies (with fewer, an interval is only the "
        "studies' own values; time_to_target.csv keeps them). ∞: not reached. †: incomplete, "
        "see the list below the table. ‡: a disturbed run counts (its times are not a quiet "
        "machine's). Scores rank the submissions and workloads shown (--submissions, "
        "--workloads): the fastest is the fastest among them."
    )


def has_interval(n_studies: int) -> bool:
    return n_studies >= MIN_STUDIES_FOR_INTERVAL


def _row_has_intervals(board: Leaderboard) -> bool:
    """Scores and speedups resample every cell: intervals only when each cell run has enough."""
    run = board.n_studies[board.n_studies > 0]
    return len(run) > 0 and has_interval(int(run.min()))


def no_interval_text(board: Leaderboard) -> str:
    """'n = 2: no interval.' for the study counts too small for one ('' when there are none)."""
    small = sorted({int(n) for n in board.n_studies.flat if 0 < n < MIN_STUDIES_FOR_INTERVAL})
    if not small:
        return ""
    counts = f"{small[0]}" if len(small) == 1 else f"{small[0]}–{small[-1]}"
    return f"n = {counts}: no interval."


def time_cell(board: Leaderboard, i: int, j: int, context: TableContext) -> tuple[str, str, str]:
    """(value, interval or '', mark) of one submission on one workload."""
    unit = board.settings.unit
    if board.n_studies[i, j] == 0:
        value, spread = "—", ""
    else:
        value = format_time(board.times[i, j], unit)
        low, high = board.times_ci[:, i, j]
        fmt = lambda v: format_time(v, unit)  # noqa: E731
        spread = format_interval(low, high, fmt) if has_interval(board.n_studies[i, j]) else ""
    cell = (board.submissions[i], board.workloads[j])
    mark = ("†" if cell in context.incomplete else "") + ("‡" if cell in context.disturbed else "")
    return value, spread, mark


def score_interval(board: Leaderboard, i: int) -> str:
    if not _row_has_intervals(board):
        return ""
    return format_interval(*board.scores_ci[:, i], fmt=lambda v: f"{v:.2f}")


def _speedup_parts(board: Leaderboard, i: int) -> tuple[str, str, str]:
    """(value, interval or '', '(used/scored)' when fewer workloads than all count)."""
    value = format_speedup(board.speedup[i])
    spread = ""
    if math.isfinite(board.speedup[i]) and _row_has_intervals(board):
        spread = format_interval(*board.speedup_ci[:, i], fmt=lambda v: f"{v:.2f}")
    used, scored = int(board.speedup_workloads[i]), len(board.scored_workloads)
    return value, spread, f"({used}/{scored})" if used < scored else ""


def speedup_text(board: Leaderboard, i: int) -> str:
    if board.speedup is None:
        return ""
    return " ".join(p for p in _speedup_parts(board, i) if p)


# -- order of rows and columns -------------------------------------------------------------------
def reorder(
    board: Leaderboard,
    submissions: Sequence[str] | None = None,
    workloads: Sequence[str] | None = None,
) -> Leaderboard:
    """The leaderboard with rows in the order of `submissions` and columns in the order of
    `workloads` (names not listed keep their order, after the listed ones; a workload split by
    target, "digits (accuracy 0.98)", sits where "digits" is listed). The ranks stay the
    scores' (TableContext.ranks)."""

    def position(order: Sequence[str] | None, name: str) -> int:
        if not order:
            return 0
        for candidate in (name, name.split(" (")[0]):
            if candidate in order:
                return list(order).index(candidate)
        return len(order)

    rows = sorted(
        range(len(board.submissions)), key=lambda i: position(submissions, board.submissions[i])
    )
    cols = sorted(
        range(len(board.workloads)), key=lambda j: position(workloads, board.workloads[j])
    )
    scored = sorted(
        range(len(board.scored_workloads)),
        key=lambda j: position(workloads, board.scored_workloads[j]),
    )
    grid = np.ix_(rows, cols)

    def pick(values):
        return None if values is None else values[..., rows]

    return dataclasses.replace(
        board,
        submissions=[board.submissions[i] for i in rows],
        workloads=[board.workloads[j] for j in cols],
        times=board.times[grid],
        times_ci=board.times_ci[:, rows][:, :, cols],
        steps=board.steps[grid],
        n_studies=board.n_studies[grid],
        n_reached=board.n_reached[grid],
        scores=board.scores[rows],
        scores_ci=board.scores_ci[:, rows],
        other_scores={m: v[rows] for m, v in board.other_scores.items()},
        speedup=pick(board.speedup),
        speedup_ci=pick(board.speedup_ci),
        speedup_workloads=pick(board.speedup_workloads),
        scored_workloads=[board.scored_workloads[j] for j in scored],
        scored_times=board.scored_times[rows][:, scored]
        if board.scored_times.size
        else board.scored_times,
    )


# -- Markdown ------------------------------------------------------------------------------------
def markdown(board: Leaderboard, context: TableContext) -> str:
    """One leaderboard's section of leaderboard.md (method_text, said once, is not in it)."""
    speedup = board.speedup is not None
    header = ["rank", "submission", "score", "CI", "reached"]
    if speedup:
        header.insert(4, f"speedup vs {context.display_name(board.settings.baseline or '')}")
    header += [context.display_name(w) for w in board.workloads]
    notes = [rules_text(board), no_interval_text(board), context.pooled_text()]
    lines = [
        f"## {context.title()}",
        "",
        f"Hardware: {context.hardware_text()}. {context.studies_text(board)}.",
        "",
        *((warning, "") if (warning := small_n_warning(board.n_studies)) else ()),
        *([" ".join(n for n in notes if n), ""] if any(notes) else []),
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if h == "submission" else "---:" for h in header) + "|",
    ]
    for i, submission in enumerate(board.submissions):
        row = [
            str(context.rank(board, i)),
            context.display_name(submission),
            format_score(board.scores[i], board.settings.method),
            score_interval(board, i),
            f"{board.reached(i)}/{len(board.scored_workloads)}",
        ]
        if speedup:
            row.insert(4, speedup_text(board, i))
        for j in range(len(board.workloads)):
            value, spread, mark = time_cell(board, i, j, context)
            row.append(" ".join(p for p in (value + mark, spread) if p))
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "Targets: "
        + "; ".join(f"{context.display_name(w)} {context.target_text(w)}" for w in board.workloads),
    ]
    if speedup:
        lines.append(
            f"Speedup: geometric mean over workloads of the time of "
            f"{context.display_name(board.settings.baseline or '')} divided by the submission's "
            "time, over the workloads both reached (count shown when fewer than all)."
        )
    if context.problems:
        lines += ["", "Incomplete or unusual:", ""] + [f"- {p}" for p in context.problems]
    return "\n".join(lines) + "\n"


# -- LaTeX ---------------------------------------------------------------------------------------
LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "∞": r"$\infty$",
    "†": r"$^\dagger$",
    "‡": r"$^\ddagger$",
    "×": r"$\times$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "τ": r"$\tau$",
    "—": "---",
}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(c, c) for c in text)


def latex(board: Leaderboard, context: TableContext, wide: bool = False) -> str:
    """A one-column `table` float (`wide`: `table*`, the full text width of a two-column paper)
    for \\input: a one-sentence caption, the tabular, and a note below it with the details
    (targets, hardware, n, rules). Needs only \\usepackage{booktabs}."""
    speedup = board.speedup is not None
    unit = UNITS[board.settings.unit][0]
    ranked = [context.rank(board, i) for i in range(len(board.submissions))]
    show_rank = ranked != sorted(ranked)  # rows in another order than the scores'
    fixed = (["\\#"] if show_rank else []) + ["Submission", "Score"]
    fixed += ["Speedup"] if speedup else []
    n_fixed, n_workloads = len(fixed), len(board.workloads)
    columns = "@{}" + ("r" if show_rank else "") + "l" + "r" * (n_fixed - 1 - show_rank)
    columns += "r" * n_workloads + "@{}"
    float_name = "table*" if wide else "table"
    caption = (
        f"Benchmark score and median time-to-target ({unit}) of {len(board.submissions)} "
        f"submission{'s' if len(board.submissions) != 1 else ''} on {n_workloads} "
        f"workload{'s' if n_workloads != 1 else ''}"
        + (f", {latex_escape(context.name)}" if context.name else "")
        + "."
    )
    label = f"tab:leaderboard-{context.name}" if context.name else "tab:leaderboard"
    lines = [
        "% Generated by `python -m harness.report`; needs \\usepackage{booktabs}. "
        + ("Full text width (--wide)." if wide else "One column wide (--wide: table*)."),
        f"\\begin{{{float_name}}}[t]",
        "\\centering",
        f"\\caption{{{caption}}}",
        f"\\label{{{label}}}",
        "\\small",
        "\\setlength{\\tabcolsep}{2.5pt}",
        f"\\begin{{tabular}}{{{columns}}}",
        "\\toprule",
        " & " * (n_fixed - 1)
        + f" & \\multicolumn{{{n_workloads}}}{{c}}{{Time-to-target ({latex_escape(unit)})}} \\\\",
        f"\\cmidrule(l){{{n_fixed + 1}-{n_fixed + n_workloads}}}",
        " & ".join(fixed)
        + " & "
        + " & ".join(latex_escape(context.display_name(w)) for w in board.workloads)
        + " \\\\",
        "\\midrule",
    ]
    for i, submission in enumerate(board.submissions):
        score = _latex_cell(
            format_score(board.scores[i], board.settings.method), score_interval(board, i)
        )
        row = [str(ranked[i])] if show_rank else []
        row += [latex_escape(context.display_name(submission)), score]
        if speedup:
            value, spread, count = _speedup_parts(board, i)
            row.append(_latex_cell(latex_escape(value), spread, count))
        for j in range(n_workloads):
            value, spread, mark = time_cell(board, i, j, context)
            row.append(_latex_cell(latex_escape(value + mark), spread))
        lines.append(" & ".join(row) + " \\\\")
    lines += [
        "\\bottomrule",
        "\\end{tabular}",
        "\\par\\smallskip",
        "\\begin{minipage}{\\linewidth}\\footnotesize\\raggedright",
        ("\\#: rank by score. " if show_rank else "") + latex_note(board, context),
        "\\end{minipage}",
        f"\\end{{{float_name}}}",
        "",
    ]
    return "\n".join(lines)


def latex_note(board: Leaderboard, context: TableContext) -> str:
    """The details a caption should not hold: rules, intervals, marks, targets, hardware, n."""
    s = board.settings
    how = "exact integral" if s.method == "exact" else "AlgoPerf discretisation"
    parts = [
        f"Score: benchmark score ($\\tau_{{\\max}} = {s.tau_max:g}$, {how}; 1 = fastest on "
        "every workload)"
        + (
            f"; speedup: geometric mean over workloads of "
            f"{latex_escape(context.display_name(s.baseline or ''))}'s time / the submission's, "
            "over the workloads both reached ((k/N) below it: k of the N workloads)"
            if board.speedup is not None
            else ""
        )
        + ".",
        latex_escape(rules_text(board)),
        f"Times: median over studies of each study's {latex_escape(BEST_TRIAL_TEXT[s.best_trial])}"
        f", in {latex_escape(UNITS[s.unit][1])}; $\\infty$: not reached.",
    ]
    if (board.n_studies >= MIN_STUDIES_FOR_INTERVAL).any():
        parts.append(
            f"Brackets: {latex_escape(f'{s.confidence:.0%}')} bootstrap intervals over studies "
            f"({s.n_resamples} resamples), where $n \\geq {MIN_STUDIES_FOR_INTERVAL}$."
        )
    parts.append(latex_escape(no_interval_text(board)))
    if context.incomplete:
        parts.append("$^\\dagger$: incomplete (see leaderboard.md).")
    if context.disturbed:
        parts.append("$^\\ddagger$: a disturbed run counts.")
    parts += [
        "Targets: "
        + latex_escape(
            "; ".join(
                f"{context.display_name(w)} {context.target_text(w)}" for w in board.workloads
            )
        )
        + ".",
        f"Hardware: {latex_escape(context.hardware_text())}.",
        latex_escape(context.studies_text(board)) + ".",
        latex_escape(context.pooled_text()),
    ]
    return " ".join(p for p in parts if p)


def _latex_cell(value: str, *below: str) -> str:
    """The value with its interval (and any other note) below it in small type: each line
    narrower than one would be with them side by side."""
    below = tuple(b for b in below if b)
    if not below:
        return value
    lines = "".join(f"\\\\[-2pt]{{\\scriptsize {latex_escape(b)}}}" for b in below)
    return f"\\begin{{tabular}}[t]{{@{{}}r@{{}}}}{value}{lines}\\end{{tabular}}"


# -- CSV -----------------------------------------------------------------------------------------
def _context_columns(context: TableContext) -> dict:
    return {
        "leaderboard": context.number,
        "leaderboard_name": context.name,
        "experiment": context.experiment,
        "ruleset": context.ruleset,
        "hardware": "; ".join(name for name, _ in context.hardware),
    }


def leaderboard_rows(board: Leaderboard, context: TableContext) -> pd.DataFrame:
    rows = []
    for i, submission in enumerate(board.submissions):
        row = {
            **_context_columns(context),
            "rank": context.rank(board, i),
            "submission": submission,
            "display_name": context.display_name(submission),
            "score": board.scores[i],
            "score_ci_low": board.scores_ci[0, i],
            "score_ci_high": board.scores_ci[1, i],
            "method": board.settings.method,
            **{f"score_{m}": s[i] for m, s in board.other_scores.items()},
            "best_trial": board.settings.best_trial,
            "workloads_reached": board.reached(i),
            "workloads": len(board.scored_workloads),
            "studies_min": int(board.n_studies[i].min()),
            "studies_max": int(board.n_studies[i].max()),
            "incomplete": any((submission, w) in context.incomplete for w in board.workloads),
        }
        if board.speedup is not None:
            row.update(
                baseline=board.settings.baseline,
                speedup=board.speedup[i],
                speedup_ci_low=board.speedup_ci[0, i],
                speedup_ci_high=board.speedup_ci[1, i],
                speedup_workloads=int(board.speedup_workloads[i]),
            )
        rows.append(row)
    return pd.DataFrame(rows)


def time_to_target_rows(board: Leaderboard, context: TableContext) -> pd.DataFrame:
    rows = []
    for i, submission in enumerate(board.submissions):
        for j, workload in enumerate(board.workloads):
            metric, value, lower = context.targets.get(workload, ("", math.nan, None))
            ended = context.ended.get((submission, workload), {})
            cell = board.studies[
                (board.studies["submission"] == submission)
                & (board.studies["workload"] == workload)
            ].sort_values("study")
            rows.append(
                {
                    **_context_columns(context),
                    "submission": submission,
                    "workload": workload,
                    "target_metric": metric,
                    "target_value": value,
                    "lower_is_better": lower,
                    "unit": board.settings.unit,
                    "time_to_target": board.times[i, j],
                    "ci_low": board.times_ci[0, i, j],
                    "ci_high": board.times_ci[1, i, j],
                    "steps_to_target": board.steps[i, j],
                    "studies": int(board.n_studies[i, j]),
                    "studies_reached": int(board.n_reached[i, j]),
                    "study_times": ";".join(f"{t:g}" for t in cell["time_to_target"]),
                    "runs_diverged": ended.get("diverged", 0),
                    "runs_failed": ended.get("failed", 0),
                    "incomplete": (submission, workload) in context.incomplete,
                    "disturbed": (submission, workload) in context.disturbed,
                }
            )
    return pd.DataFrame(rows)
