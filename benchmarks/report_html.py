"""report.html at scale: the time to write the page for a synthetic results folder of 10,000
runs (tests/synthetic_results.py, as benchmarks/report_scale.py writes it), its size, and, when
Chromium is installed, how long a headless browser takes to load it and draw the run table.

The folder is loaded, scored and its figures drawn once (not timed: report_scale.py times
those); then harness.report.html.write runs --rounds times. Prints the median with the min-max
spread over rounds, of wall-clock and of CPU time; never asserts.

    python benchmarks/report_html.py [--rounds 5] [--runs 10000] [--evals 100] [--dir PATH]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from report_scale import write_folder  # noqa: E402

from harness import results  # noqa: E402
from harness.report import grouping, html, load, scoring, writers  # noqa: E402

HEADLESS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run")


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.3f} s  (min {min(values):.3f}, max {max(values):.3f})"


def browser_load_ms(page: Path) -> str:
    """Milliseconds from navigation to the page's load event in headless Chromium (the run
    table drawn by then), or why there is no number."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return "no chromium installed"
    with tempfile.TemporaryDirectory(prefix="chromium_") as profile:
        done = subprocess.run(
            [chromium, *HEADLESS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=300,
        )
    found = re.search(r'data-loaded-after-ms="(\d+)"', done.stdout)
    return f"{found[1]} ms" if found else f"no load time in the DOM (exit {done.returncode})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--dir", type=Path, help="reuse or keep the synthetic folder here")
    parser.add_argument("--no-figures", action="store_true", help="a page without figures")
    args = parser.parse_args()

    root = args.dir or Path(tempfile.mkdtemp(prefix="report_html_"))
    if not results.find_run_dirs(root):
        start = time.perf_counter()
        write_folder(root, args.runs, args.evals)
        print(f"wrote the synthetic folder in {time.perf_counter() - start:.1f} s: {root}")
    loaded = load.load(root)
    groups = grouping.build_groups(loaded.runs, scoring.Settings(baseline="submission_0"))
    with tempfile.TemporaryDirectory(prefix="report_html_out_") as folder:
        out = Path(folder)
        figure_paths: list[Path] = []
        if not args.no_figures:
            start = time.perf_counter()
            figure_paths, _ = writers.write_figures(
                writers.figure_jobs(groups, loaded.evaluations), out
            )
            print(f"drew the figures once in {time.perf_counter() - start:.1f} s (not counted)")
        warnings = [f"synthetic warning {k}" for k in range(100)]
        seconds, cpu = [], []
        for _ in range(args.rounds):
            start, start_cpu = time.perf_counter(), time.process_time()
            page = html.write(out, groups, loaded, figure_paths, warnings, [str(root)])
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        size = page.stat().st_size / 2**20
        print(
            f"{len(loaded.runs)} runs, {len(figure_paths) // 2} figures, {args.rounds} rounds "
            "(the machine may be busy)"
        )
        print(f"  write report.html, wall {spread(seconds)}; {size:.1f} MiB")
        print(f"  write report.html, CPU  {spread(cpu)} (less affected by other processes)")
        print(f"  headless Chromium: load event after {browser_load_ms(page)} (one run)")
    if args.dir is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
