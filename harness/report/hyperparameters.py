"""Best hyperparameters: the values each study's best trial actually used (record.json's
`hyperparameters`: defaults, overrides and the search point after its transforms), per
submission and workload, as Markdown, LaTeX and CSV; says when the studies' best trials differ.

Formats what the records and scoring.best_trials hold; never scores and never reads files.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from harness.report.scoring import Leaderboard
from harness.report.tables import TableContext, latex_escape

PREFIX = "hp_"  # hyperparameter columns of best_trials.csv and best_hyperparameters.csv


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: one column per value, whatever the nesting."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list) else value
    return flat


def best_trial_rows(board: Leaderboard, runs: pd.DataFrame) -> pd.DataFrame:
    """board.studies (one row per study: its best trial) with the hyperparameters that trial
    used, one column hp_<name> each (nested names joined by dots), and `reached`."""
    studies = board.studies.merge(
        runs[["run_id", "hyperparameters"]], on="run_id", how="left", validate="many_to_one"
    )
    used = [flatten(json.loads(text or "{}")) for text in studies["hyperparameters"].fillna("")]
    columns = pd.DataFrame(used, index=studies.index)
    columns = columns[sorted(columns.columns)].add_prefix(PREFIX)
    studies = studies.drop(columns="hyperparameters")
    studies.insert(
        studies.columns.get_loc("time_to_target") + 1,
        "reached",
        [math.isfinite(t) for t in studies["time_to_target"]],
    )
    return pd.concat([studies, columns], axis=1)


def format_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.4g}"


def _present(row: pd.Series) -> dict[str, Any]:
    return {
        key.removeprefix(PREFIX): value
        for key, value in row.items()
        if key.startswith(PREFIX) and not (isinstance(value, float) and math.isnan(value))
    }


def cells(board: Leaderboard, rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Per (submission, workload), in the leaderboard's order: the values every study's best
    trial shares, and for the others each study's value."""
    found = []
    for submission in board.submissions:
        for workload in board.workloads:
            cell = rows[(rows["submission"] == submission) & (rows["workload"] == workload)]
            if cell.empty:
                continue
            cell = cell.sort_values("study")
            per_study = [(int(r["study"]), _present(r)) for _, r in cell.iterrows()]
            keys = sorted({k for _, values in per_study for k in values})
            same = {
                k: per_study[0][1][k]
                for k in keys
                if all(k in v and v[k] == per_study[0][1].get(k) for _, v in per_study)
            }
            differ = {k: [(s, v.get(k)) for s, v in per_study] for k in keys if k not in same}
            found.append(
                {
                    "submission": submission,
                    "workload": workload,
                    "studies": len(cell),
                    "reached": int(cell["reached"].sum()),
                    "same": same,
                    "differ": differ,
                }
            )
    return found


def same_text(cell: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {format_value(v)}" for k, v in cell["same"].items()) or "none"


def differ_text(cell: dict[str, Any]) -> str:
    """'learning_rate: 0.01 (study 0), 0.001 (studies 1, 2)'; '' when the studies agree."""
    parts = []
    for key, values in cell["differ"].items():
        by_value: dict[str, list[int]] = {}
        for study, value in values:
            by_value.setdefault("—" if value is None else format_value(value), []).append(study)
        parts.append(
            f"{key}: "
            + ", ".join(
                f"{v} (stud{'y' if len(s) == 1 else 'ies'} {', '.join(map(str, s))})"
                for v, s in by_value.items()
            )
        )
    return "; ".join(parts)


def markdown(board: Leaderboard, context: TableContext, rows: pd.DataFrame) -> str:
    lines = [
        f"## Best hyperparameters, {context.title()[0].lower()}{context.title()[1:]}",
        "",
        "The values each study's best trial used (its record's hyperparameters: defaults, "
        "overrides and the search point after its transforms). Where the studies' best trials "
        "differ, each study's value is given. reached: studies whose best trial reached the "
        "target (in the others, the trial that came closest).",
        "",
        "| submission | workload | reached | hyperparameters | differ between studies |",
        "|---|---|---:|---|---|",
    ]
    for cell in cells(board, rows):
        lines.append(
            f"| {context.display_name(cell['submission'])} | "
            f"{context.display_name(cell['workload'])} | {cell['reached']}/{cell['studies']} | "
            f"{same_text(cell)} | {differ_text(cell) or '—'} |"
        )
    return "\n".join(lines) + "\n"


def latex(board: Leaderboard, context: TableContext, rows: pd.DataFrame, wide: bool = False) -> str:
    """A one-column `table` (`wide`: `table*`): one line per submission and workload, the
    values wrapped within the column. Needs only \\usepackage{booktabs}."""
    float_name = "table*" if wide else "table"
    label = f"tab:hyperparameters-{context.name}" if context.name else "tab:hyperparameters"
    lines = [
        "% Generated by `python -m harness.report`; needs \\usepackage{booktabs}.",
        f"\\begin{{{float_name}}}[t]",
        "\\centering",
        "\\caption{Hyperparameters of each study's best trial"
        + (f", {latex_escape(context.name)}" if context.name else "")
        + ".}",
        f"\\label{{{label}}}",
        "\\small",
        "\\setlength{\\tabcolsep}{3pt}",
        "\\begin{tabular}{@{}p{0.3\\linewidth}p{0.66\\linewidth}@{}}",
        "\\toprule",
        "{\\raggedright Submission, workload\\par} & Hyperparameters \\\\",
        "\\midrule",
    ]
    for cell in cells(board, rows):
        name = (
            f"{latex_escape(context.display_name(cell['submission']))}, "
            f"{latex_escape(context.display_name(cell['workload']))}"
        )
        values = latex_escape(same_text(cell))
        if cell["differ"]:
            values += "; differ between studies: " + latex_escape(differ_text(cell))
        if cell["reached"] < cell["studies"]:
            values += f" (reached the target in {cell['reached']} of {cell['studies']} studies)"
        lines.append(f"{{\\raggedright {name}\\par}} & {{\\raggedright {values}\\par}} \\\\")
    lines += [
        "\\bottomrule",
        "\\end{tabular}",
        "\\par\\smallskip",
        "\\begin{minipage}{\\linewidth}\\footnotesize\\raggedright",
        "The values each study's best trial used (after the search space's transforms); "
        "where the studies' best trials differ, each study's value is given. "
        + latex_escape(context.studies_text(board))
        + ".",
        "\\end{minipage}",
        f"\\end{{{float_name}}}",
        "",
    ]
    return "\n".join(lines)


def csv_rows(rows: pd.DataFrame, context: TableContext) -> pd.DataFrame:
    """best_hyperparameters.csv's rows of one leaderboard: per study its best trial and the
    values it used, and whether every study of that submission and workload used the same."""
    values = [c for c in rows.columns if c.startswith(PREFIX)]
    same = pd.Series(True, index=rows.index)
    if values:
        distinct = rows.groupby(["submission", "workload"])[values].transform(
            lambda column: column.astype(str).nunique()
        )
        same = (distinct <= 1).all(axis=1)
    return rows.assign(
        leaderboard=context.number,
        leaderboard_name=context.name,
        display_name=rows["submission"].map(context.display_name),
        same_across_studies=same,
    )[
        [
            "leaderboard",
            "leaderboard_name",
            "submission",
            "display_name",
            "workload",
            "study",
            "trial",
            "run_id",
            "reached",
            "time_to_target",
            "same_across_studies",
            *values,
        ]
    ]
