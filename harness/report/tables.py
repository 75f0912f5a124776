"""Leaderboard tables: Markdown for a README or an issue, LaTeX (booktabs) for a paper, and
CSV for anything else. Every table names its hardware and its n.

Formats numbers that scoring.py computed; never computes a score itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from harness.report.scoring import UNITS, Leaderboard
from harness.report.stats import small_n_warning


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

    def title(self) -> str:
        return f"Leaderboard {self.number}: experiment {self.experiment}, ruleset {self.ruleset}"

    def hardware_text(self) -> str:
        if len(self.hardware) == 1 and not self.pooled:
            return self.hardware[0][0]
        machines = "; ".join(f"{name} ({count} runs)" for name, count in self.hardware)
        return f"{self.pooled} {machines}" if self.pooled else machines

    def studies_text(self, board: Leaderboard) -> str:
        low, high = int(board.n_studies.min()), int(board.n_studies.max())
        studies = f"{low}" if low == high else f"{low}-{high}"
        return (
            f"n = {studies} studies per submission and workload, {self.trials_per_study} "
            f"trial(s) per study, {self.n_runs} runs"
        )

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


def _method_text(board: Leaderboard) -> str:
    s = board.settings
    how = (
        "exact integral of the performance profile"
        if s.method == "exact"
        else "AlgoPerf discretisation: 100 evenly spaced τ, trapezoid rule"
    )
    rules = rules_text(board)
    return (
        f"Score: benchmark score (τ_max = {s.tau_max:g}, {how}; 1 = fastest on every workload, "
        f"0 = never within τ_max of the fastest). {rules + ' ' if rules else ''}"
        f"Times: median over studies of each study's {BEST_TRIAL_TEXT[s.best_trial]}, in "
        f"{UNITS[s.unit][1]}. Brackets: {s.confidence:.0%} bootstrap intervals over studies "
        f"({s.n_resamples} resamples, seed {s.seed}), shown where a cell "
        f"has two or more studies. ∞: not reached. †: incomplete, see the list below. "
        f"‡: a disturbed run counts (its times are not a quiet machine's)."
    )


def _time_cell(board: Leaderboard, i: int, j: int, context: TableContext) -> tuple[str, str, str]:
    """(value, interval or '', mark) of one submission on one workload."""
    unit = board.settings.unit
    if board.n_studies[i, j] == 0:
        value, spread = "—", ""
    else:
        value = format_time(board.times[i, j], unit)
        low, high = board.times_ci[:, i, j]
        fmt = lambda v: format_time(v, unit)  # noqa: E731
        spread = format_interval(low, high, fmt) if board.n_studies[i, j] >= 2 else ""
    cell = (board.submissions[i], board.workloads[j])
    mark = ("†" if cell in context.incomplete else "") + ("‡" if cell in context.disturbed else "")
    return value, spread, mark


def _score_interval(board: Leaderboard, i: int) -> str:
    if board.n_studies.max() < 2:
        return ""
    return format_interval(*board.scores_ci[:, i], fmt=lambda v: f"{v:.2f}")


def _speedup_text(board: Leaderboard, i: int) -> str:
    if board.speedup is None:
        return ""
    value = format_speedup(board.speedup[i])
    if math.isfinite(board.speedup[i]) and board.n_studies.max() >= 2:
        value += " " + format_interval(*board.speedup_ci[:, i], fmt=lambda v: f"{v:.2f}")
    used, scored = int(board.speedup_workloads[i]), len(board.scored_workloads)
    return f"{value} ({used}/{scored})" if used < scored else value


# -- Markdown ------------------------------------------------------------------------------------
def markdown(board: Leaderboard, context: TableContext) -> str:
    speedup = board.speedup is not None
    header = ["rank", "submission", "score", "CI", "reached"]
    if speedup:
        header.insert(4, f"speedup vs {board.settings.baseline}")
    header += board.workloads
    lines = [
        f"## {context.title()}",
        "",
        f"Hardware: {context.hardware_text()}. {context.studies_text(board)}.",
        "",
        *((warning, "") if (warning := small_n_warning(board.n_studies)) else ()),
        _method_text(board),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if h == "submission" else "---:" for h in header) + "|",
    ]
    for i, submission in enumerate(board.submissions):
        row = [
            str(i + 1),
            submission,
            format_score(board.scores[i], board.settings.method),
            _score_interval(board, i),
            f"{board.reached(i)}/{len(board.scored_workloads)}",
        ]
        if speedup:
            row.insert(4, _speedup_text(board, i))
        for j in range(len(board.workloads)):
            value, spread, mark = _time_cell(board, i, j, context)
            row.append(" ".join(p for p in (value + mark, spread) if p))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Targets: " + "; ".join(f"{w} {context.target_text(w)}" for w in board.workloads)]
    if speedup:
        lines.append(
            f"Speedup: geometric mean over workloads of the time of {board.settings.baseline} "
            "divided by the submission's time, over the workloads both reached (count shown "
            "when fewer than all)."
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


def latex(board: Leaderboard, context: TableContext) -> str:
    """A `table*` float (full text width in two-column papers, a plain table in one-column
    ones) for \\input; needs only \\usepackage{booktabs}."""
    speedup = board.speedup is not None
    fixed = ["Rank", "Submission", "Score"] + ([r"Speedup"] if speedup else [])
    n_fixed, n_workloads = len(fixed), len(board.workloads)
    columns = "@{}rl" + "r" * (n_fixed - 2) + "r" * n_workloads + "@{}"
    baseline = latex_escape(board.settings.baseline or "")
    confidence = latex_escape(f"{board.settings.confidence:.0%}")
    rules = rules_text(board)
    caption = (
        f"{latex_escape(context.title())}. Score: benchmark score "
        f"($\\tau_{{\\max}} = {board.settings.tau_max:g}$"
        f"{', exact integral' if board.settings.method == 'exact' else ', AlgoPerf discretisation'}"
        f"){' and speedup over ' + baseline + ' (geometric mean)' if speedup else ''}; "
        f"{latex_escape(rules) + ' ' if rules else ''}"
        f"per workload: median over studies of the "
        f"{latex_escape(BEST_TRIAL_TEXT[board.settings.best_trial])}'s time-to-target in "
        f"{latex_escape(UNITS[board.settings.unit][1])}; "
        f"brackets: {confidence} bootstrap intervals over studies "
        f"({board.settings.n_resamples} resamples). $\\infty$: not reached. "
        + ("$^\\dagger$: incomplete. " if context.incomplete else "")
        + ("$^\\ddagger$: a disturbed run counts. " if context.disturbed else "")
        + f"Hardware: {latex_escape(context.hardware_text())}. "
        + latex_escape(context.studies_text(board))
        + ". Targets: "
        + latex_escape("; ".join(f"{w} {context.target_text(w)}" for w in board.workloads))
        + "."
    )
    lines = [
        "% Generated by `python -m harness.report`; needs \\usepackage{booktabs}.",
        "\\begin{table*}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{{caption}}}",
        f"\\label{{tab:leaderboard-{context.number}}}",
        "\\setlength{\\tabcolsep}{4pt}",
        f"\\begin{{tabular}}{{{columns}}}",
        "\\toprule",
        " & ".join(fixed)
        + f" & \\multicolumn{{{n_workloads}}}{{c}}{{Time-to-target "
        + f"({latex_escape(UNITS[board.settings.unit][0])})}} \\\\",
        f"\\cmidrule(l){{{n_fixed + 1}-{n_fixed + n_workloads}}}",
        " & " * (n_fixed - 1)
        + " & "
        + " & ".join(latex_escape(w) for w in board.workloads)
        + " \\\\",
        "\\midrule",
    ]
    for i, submission in enumerate(board.submissions):
        score = _latex_cell(
            format_score(board.scores[i], board.settings.method), _score_interval(board, i)
        )
        row = [str(i + 1), latex_escape(submission), score]
        if speedup:
            value, _, rest = _speedup_text(board, i).partition(" ")
            row.append(_latex_cell(latex_escape(value), rest))
        for j in range(n_workloads):
            value, spread, mark = _time_cell(board, i, j, context)
            row.append(_latex_cell(latex_escape(value + mark), spread))
        lines.append(" & ".join(row) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table*}", ""]
    return "\n".join(lines)


def _latex_cell(value: str, interval: str) -> str:
    """The value with its interval below it in small type: half the width of one line."""
    if not interval:
        return value
    return (
        f"\\begin{{tabular}}[t]{{@{{}}r@{{}}}}{value}\\\\"
        f"[-2pt]{{\\scriptsize {latex_escape(interval)}}}\\end{{tabular}}"
    )


# -- CSV -----------------------------------------------------------------------------------------
def _context_columns(context: TableContext) -> dict:
    return {
        "leaderboard": context.number,
        "experiment": context.experiment,
        "ruleset": context.ruleset,
        "hardware": "; ".join(name for name, _ in context.hardware),
    }


def leaderboard_rows(board: Leaderboard, context: TableContext) -> pd.DataFrame:
    rows = []
    for i, submission in enumerate(board.submissions):
        row = {
            **_context_columns(context),
            "rank": i + 1,
            "submission": submission,
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
