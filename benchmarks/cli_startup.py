"""How long `run.py --help` and `run.py --cfg job` take, and whether torch is imported before
they answer (it must not be: `python -X importtime` lists every module a command imported).

Each command runs --repeats times in a fresh interpreter; with --before REF the same commands of
git revision REF (exported to a temporary folder) run interleaved with this tree's, so both see
the same machine load. Prints median and min-max per command and the CPU model. Never asserts.

    python benchmarks/cli_startup.py [--repeats 7] [--before REF]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.environment import cpu_model  # noqa: E402 (this process only: not timed)

COMMANDS = {"--help": ["--help"], "--cfg job": ["--cfg", "job"]}
HEAVY = ("torch", "numpy", "scipy", "pandas", "matplotlib")


def timed(tree: Path, arguments: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command in a fresh interpreter; on a busy machine the
    CPU time is the steadier of the two."""
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(tree / "run.py"), *arguments],
        cwd=tree,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def heavy_imports(tree: Path, arguments: list[str]) -> list[str]:
    """The heavy top-level modules (torch, numpy, ...) the command imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(tree / "run.py"), *arguments],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    )
    names = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    return sorted(name for name in names if name in HEAVY)


def export(revision: str, folder: Path) -> Path:
    """The tree of git revision `revision`, in `folder`."""
    archive = folder / "tree.tar"
    with open(archive, "wb") as handle:
        subprocess.run(["git", "archive", revision], cwd=ROOT, stdout=handle, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "tree", filter="data")
    return folder / "tree"


def summary(times: list[float]) -> str:
    return f"{statistics.median(times):.2f} s [{min(times):.2f}-{max(times):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--before", metavar="REF", help="also time git revision REF, interleaved")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        trees = {"this tree": ROOT}
        if args.before:
            trees[f"before ({args.before})"] = export(args.before, Path(scratch))
        print(f"CPU: {cpu_model()}, {os.cpu_count()} CPUs; load average {os.getloadavg()}")
        for name, arguments in COMMANDS.items():
            for tree in trees.values():
                timed(tree, arguments)  # warm the file cache
            walls: dict[str, list[float]] = {label: [] for label in trees}
            cpus: dict[str, list[float]] = {label: [] for label in trees}
            for _ in range(args.repeats):
                for label, tree in trees.items():
                    wall, cpu = timed(tree, arguments)
                    walls[label].append(wall)
                    cpus[label].append(cpu)
            for label, tree in trees.items():
                heavy = heavy_imports(tree, arguments)
                print(
                    f"run.py {name:<9} {label:<22} n={args.repeats} median [min-max]: wall "
                    f"{summary(walls[label])}, CPU {summary(cpus[label])}; heavy modules "
                    f"imported: {', '.join(heavy) or 'none'}"
                )


if __name__ == "__main__":
    main()
