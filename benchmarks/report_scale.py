"""Report at scale: load and score a synthetic results folder of 10,000 runs x 100 evaluations,
cold (no parquet cache) and warm (cache present), and warm after one run changed; or, with
--cli, the whole `python -m harness.report` with and without figures.

The folder is written in the real results format (tests/synthetic_results.py): 10
submissions x 10 workloads x 20 studies x 5 trials, external ruleset. "load" is
harness.report.load.load (every record.json and eval_measurements.csv, or the
cache); "score" is grouping.build_groups (grouping, completeness audit, best trials, medians,
scores and bootstrap intervals with 2000 resamples). Rounds alternate cold and warm; prints
medians with the min-max spread over rounds; never asserts.

`--shape algoperf` writes a folder the size of the AlgoPerf v0.5 logs instead (4,560 runs x 40
evaluations, 17 submissions, 16 workloads, 5 studies, two leaderboards: 10 submissions in the
external ruleset with 5 trials per study, 7 in the self-tuning one with 1; --runs is ignored).
`--cli` times `python -m harness.report DIR --no-cache --out TMP` with and without
`--no-figures`, alternating within each round, in fresh processes as a user runs it;
`--against OTHER_CHECKOUT` times that checkout's report too, interleaved.

    python benchmarks/report_scale.py [--rounds 3] [--runs 10000] [--evals 100] [--dir PATH]
    python benchmarks/report_scale.py --shape algoperf --evals 40 --cli [--dir PATH] [--against P]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import results  # noqa: E402
from harness.report import grouping, load, scoring  # noqa: E402
from tests.synthetic_results import write_run  # noqa: E402

SUBMISSIONS, WORKLOADS, TRIALS = 10, 10, 5


# A shape: (ruleset, submissions, studies, trials per study) per leaderboard, on W workloads.
Shape = tuple[tuple[str, int, int, int], ...]
# AlgoPerf v0.5's size: 17 submissions over two rulesets on 16 workloads.
ALGOPERF = (("external", 10, 5, 5), ("self", 7, 5, 1))
ALGOPERF_WORKLOADS = 16


def write_shape(root: Path, shape: Shape, workloads: int, evals: int, spread: bool) -> None:
    """Deterministic times: some trials miss, the rest take 50-250 s; with `spread`, workload w
    takes (1 + w) times longer (to the budget: a decade past the fastest, so log x axes).
    Submissions are numbered across rulesets, as in the real logs."""
    first = 0
    for ruleset, submissions, studies, trials in shape:
        for s in range(first, first + submissions):
            for w in range(workloads):
                for study in range(studies):
                    for trial in range(trials):
                        index = (7 * s + 13 * w + 3 * study + trial) % 11
                        scale = 1 + w if spread else 1
                        time_to_target = None if index == 0 else 50.0 + 20.0 * index * scale
                        write_run(
                            root,
                            f"submission_{s}",
                            f"workload_{w}",
                            study,
                            trial,
                            time_to_target,
                            ruleset=ruleset,
                            n_evals=evals,
                            budget=10_000.0 if spread else 1000.0,
                        )
        first += submissions


def write_folder(root: Path, runs: int, evals: int) -> None:
    studies = max(1, runs // (SUBMISSIONS * WORKLOADS * TRIALS))
    write_shape(root, (("external", SUBMISSIONS, studies, TRIALS),), WORKLOADS, evals, False)


def write_algoperf_folder(root: Path, evals: int) -> None:
    write_shape(root, ALGOPERF, ALGOPERF_WORKLOADS, evals, True)


def time_cli(root: Path, rounds: int, trees: dict[str, Path]) -> None:
    """The report as a user runs it, with and without figures, from each checkout in `trees`
    (name -> folder), alternating within each round so that a busy machine slows all alike."""
    measured: dict[tuple[str, str], list[float]] = {
        (tree, what): [] for tree in trees for what in ("--no-figures", "with figures")
    }
    with tempfile.TemporaryDirectory(prefix="report_out_") as out:
        for _ in range(rounds):
            for tree, what in measured:
                command = [sys.executable, "-m", "harness.report", str(root), "--no-cache"]
                command += ["--out", out] + (["--no-figures"] if what == "--no-figures" else [])
                start = time.perf_counter()
                done = subprocess.run(command, cwd=trees[tree], capture_output=True, text=True)
                measured[tree, what].append(time.perf_counter() - start)
                if done.returncode not in (0, 1):
                    sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    print(f"python -m harness.report {root} --no-cache, {rounds} rounds")
    for (tree, what), values in measured.items():
        print(f"  {tree + ', ' + what:<36}{spread(values)}")
    for tree in trees:
        ratio = statistics.median(measured[tree, "with figures"]) / statistics.median(
            measured[tree, "--no-figures"]
        )
        print(f"  {tree}: with / without figures {ratio:.2f}x")


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - start, value


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} s  (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--dir", type=Path, help="reuse or keep the synthetic folder here")
    parser.add_argument("--shape", choices=("default", "algoperf"), default="default")
    parser.add_argument(
        "--cli", action="store_true", help="time the whole report, with and without figures"
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="with --cli, also time the report of this other checkout (e.g. a git worktree of "
        "the commit before a change), interleaved with this one's",
    )
    args = parser.parse_args()

    root = args.dir or Path(tempfile.mkdtemp(prefix="report_scale_"))
    if not results.find_run_dirs(root):
        if args.shape == "algoperf":
            seconds, _ = timed(write_algoperf_folder, root, args.evals)
        else:
            seconds, _ = timed(write_folder, root, args.runs, args.evals)
        print(f"wrote the synthetic folder in {seconds:.1f} s: {root}")
    if args.cli:
        trees = {"this": ROOT} | ({"other": args.against} if args.against else {})
        time_cli(root, args.rounds, trees)
        if args.dir is None:
            shutil.rmtree(root)
        return
    settings = scoring.Settings(baseline="submission_0")
    measured: dict[str, list[float]] = {k: [] for k in ("cold", "warm", "one changed", "score")}
    for _ in range(args.rounds):
        load.clear_cache(root)
        seconds, loaded = timed(load.load, root)
        measured["cold"].append(seconds)
        seconds, warm = timed(load.load, root)
        measured["warm"].append(seconds)
        first = warm.runs.iloc[0]
        write_run(root, first["submission"], first["workload"], 0, 0, 60.0, n_evals=args.evals)
        measured["one changed"].append(timed(load.load, root)[0])
        measured["score"].append(timed(grouping.build_groups, warm.runs, settings)[0])
    print(
        f"{len(loaded.runs)} runs, {len(loaded.evaluations)} evaluations, "
        f"{args.rounds} rounds (the machine may be busy: compare ratios, not seconds)"
    )
    for name, values in measured.items():
        label = {"score": "score (2000 resamples)"}.get(name, f"load, {name}")
        print(f"  {label:<24}{spread(values)}")
    ratio = statistics.median(measured["cold"]) / statistics.median(measured["warm"])
    print(f"  cold / warm load: {ratio:.1f}x")
    if args.dir is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
