"""How fast this machine runs a workload right now, and whether anything else took its CPUs.

The speed index (docs/design.md, "Measurement") is the number of reference passes per second:
one pass is a forward and backward of the workload's own model, freshly initialised, on the
first training batch at the run's batch size, with no optimizer update. Passes are timed in
groups of at least GROUP_SECONDS, and the index is the fastest group's rate: the minimum is what
the machine can do, and a load that lasts slows every group. It is read off the clock at the start
of a run (REPEATS_AT_START groups) and at every evaluation (REPEATS_AT_EVALUATION), on a model of
its own and with the random state saved and restored, so measuring changes nothing about
training.

A run is *disturbed* when
- more than SPEED_MOVED_SHARE of its readings (and at least two) were off their median by more
  than SPEED_TOLERANCE: a lasting change of speed, where one slow reading is the noise of a
  shared machine (single readings vary by up to ~30% on a quiet cloud VM; the median, not the
  first reading, is the baseline, because the first can be such an outlier), or
- other processes took more than OTHER_CPU_TOLERANCE of the CPU time the run's threads needed
  (counted from /proc/stat on the CPUs the run may use, minus the run's own CPU time and the
  CPUs its threads leave spare), or the hypervisor withheld more than STEAL_TOLERANCE of it
  (steal time, where the kernel reports it).
Both are documented in docs/design.md; benchmarks/noise.py measures how well they separate a
quiet machine from a loaded one.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.spec import ForwardPassMode, Workload

UNIT = "reference passes/s"
REPEATS_AT_START = 7
REPEATS_AT_EVALUATION = 3
GROUP_SECONDS = 0.02  # short passes (a small MLP: ~3 ms) are timed in groups this long
WARM_UP_SECONDS = 0.2  # untimed passes before the first reading
SPEED_TOLERANCE = 0.30  # a reading is off when < 70% of the median, or > 1/0.7 of it
SPEED_MOVED_SHARE = 0.25  # disturbed when more than this share of the readings is off
OTHER_CPU_TOLERANCE = 0.20  # disturbed when other processes took > 20% of the run's CPUs
STEAL_TOLERANCE = 0.10  # disturbed when the hypervisor withheld > 10% of them
BUSY_AT_START = 0.20  # warn when others take more than this while the first index is read
# A budget is scaled by reference / first reading within these bounds: a first reading taken
# beside a CPU hog can be 10x too low, and would otherwise stretch a 100 s budget to 1,000 s.
BUDGET_SCALE_LIMITS = (1 / 8, 8.0)


def budget_scale(reference: float, reading: float) -> tuple[float, bool]:
    """reference / reading within BUDGET_SCALE_LIMITS, and whether it had to be clamped."""
    low, high = BUDGET_SCALE_LIMITS
    scale = reference / reading
    return min(max(scale, low), high), not low <= scale <= high


class SpeedProbe:
    """Reference passes of a workload's model; `measure()` returns passes per second."""

    def __init__(self, workload: Workload, batch_size: int, seed: int):
        self.workload = workload
        device = workload.device
        self._devices = [device] if device.type == "cuda" else []
        self._synchronize: Callable[[], None] = (
            torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        )
        with torch.random.fork_rng(devices=self._devices):
            model, self.model_state = workload.init_model_fn(rng=seed)
            queue = workload.build_input_queue(seed, "train", batch_size)
            self.batch = next(queue)
        self.model = model  # a fresh one (init_model_fn's contract), never trained
        self.passes_per_group: int | None = None  # set by the first measurement
        del queue

    def _pass(self) -> None:
        workload, model = self.workload, self.model
        logits, _ = workload.model_fn(
            model,
            self.batch,
            self.model_state,
            ForwardPassMode.TRAIN,
            0,
            update_batch_norm=False,
        )
        loss = workload.loss_fn(self.batch["targets"], logits, self.batch.get("weights"))
        (loss["summed"] / loss["n_valid_examples"]).backward()
        model.zero_grad(set_to_none=True)

    def _group(self, passes: int) -> float:
        self._synchronize()
        start = time.perf_counter()
        for _ in range(passes):
            self._pass()
        self._synchronize()
        return time.perf_counter() - start

    def measure(self, repeats: int = REPEATS_AT_EVALUATION) -> float:
        """Passes per second of the fastest of `repeats` groups (the first call also warms up
        and sizes the groups)."""
        with torch.random.fork_rng(devices=self._devices):
            self.model.train()
            if self.passes_per_group is None:
                self._pass()  # allocations, lazy initialisation, compilation
                warm_until = time.perf_counter() + WARM_UP_SECONDS
                while time.perf_counter() < warm_until:  # caches, clocks, the thread pool
                    self._pass()
                once = max(self._group(1), 1e-6)
                self.passes_per_group = max(1, math.ceil(GROUP_SECONDS / once))
            fastest = min(self._group(self.passes_per_group) for _ in range(repeats))
        return self.passes_per_group / max(fastest, 1e-9)


# -- CPU accounting ------------------------------------------------------------------------------
PROC_STAT = Path("/proc/stat")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def run_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity: a Slurm allocation, `taskset`, ...)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class CpuSample:
    """Counters at one moment: wall clock, this process's CPU time, and the busy and steal time
    of the run's CPUs (None where the kernel does not report them)."""

    wall: float
    own: float
    busy: float | None
    steal: float | None

    @classmethod
    def take(cls, cpus: list[int]) -> CpuSample:
        busy = steal = None
        try:
            lines = PROC_STAT.read_text().splitlines()
        except OSError:
            lines = []
        wanted = {f"cpu{index}" for index in cpus}
        rows = [line.split() for line in lines if line.split(" ", 1)[0] in wanted]
        if rows:
            # user nice system idle iowait irq softirq steal [guest guest_nice: inside user]
            busy = sum(int(r[1]) + int(r[2]) + int(r[3]) + int(r[6]) + int(r[7]) for r in rows)
            steal = sum(int(r[8]) if len(r) > 8 else 0 for r in rows)
            busy, steal = busy / _TICK, steal / _TICK
        return cls(time.monotonic(), time.process_time(), busy, steal)


@dataclass
class CpuShares:
    """What others took of the CPU time the run needed over an interval: `threads` CPUs x wall
    time. Other processes may use the CPUs the run's threads leave spare (a run of 1 thread on 2
    CPUs beside another such run is not disturbed); what they used beyond that, and all steal
    time, came out of the run's share."""

    other: float | None  # taken by other processes
    steal: float | None  # withheld by the hypervisor
    seconds: float

    @classmethod
    def between(cls, before: CpuSample, after: CpuSample, n_cpus: int, threads: int) -> CpuShares:
        wall = after.wall - before.wall
        if wall <= 0 or before.busy is None or after.busy is None:
            return cls(None, None, max(wall, 0.0))
        needed = wall * min(threads, n_cpus)
        spare = wall * (n_cpus - min(threads, n_cpus))
        others = (after.busy - before.busy) - (after.own - before.own)
        other = max(0.0, others - spare) / needed
        steal = max(0.0, (after.steal or 0.0) - (before.steal or 0.0)) / needed
        return cls(min(other, 1.0), min(steal, 1.0), wall)


# -- the verdict ---------------------------------------------------------------------------------
def _moved(count: int, readings: int) -> bool:
    return count >= 2 and count > SPEED_MOVED_SHARE * readings


@dataclass
class SpeedReadings:
    """Every reading of the speed index over a run, the first at its start."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def slow(self) -> int:
        limit = (1 - SPEED_TOLERANCE) * self.median
        return sum(v < limit for v in self.values)

    @property
    def fast(self) -> int:
        limit = self.median / (1 - SPEED_TOLERANCE)
        return sum(v > limit for v in self.values)

    def summary(self) -> dict[str, float | int]:
        return {
            "start": self.values[0],
            "min": min(self.values),
            "max": max(self.values),
            "median": self.median,
            "readings": len(self.values),
            "slow": self.slow,
            "fast": self.fast,
        }


def disturbance(
    speed: SpeedReadings, other_share: float | None, steal_share: float | None
) -> str | None:
    """Why a run's times are not a quiet machine's, or None when nothing says they aren't."""
    reasons = []
    n, median = len(speed.values), speed.median
    if _moved(speed.slow, n):
        low = min(speed.values)
        reasons.append(
            f"the speed index was below {1 - SPEED_TOLERANCE:.0%} of its median ({median:.3g}) "
            f"at {speed.slow} of {n} readings (lowest {low:.3g}, {low / median - 1:+.0%})"
        )
    if _moved(speed.fast, n):
        high = max(speed.values)
        reasons.append(
            f"the speed index was above {1 / (1 - SPEED_TOLERANCE):.0%} of its median "
            f"({median:.3g}) at {speed.fast} of {n} readings (highest {high:.3g}): the machine "
            "was slowed for most of the run"
        )
    if other_share is not None and other_share > OTHER_CPU_TOLERANCE:
        reasons.append(
            f"other processes took {other_share:.0%} of the CPU time this run needed "
            f"(tolerance {OTHER_CPU_TOLERANCE:.0%})"
        )
    if steal_share is not None and steal_share > STEAL_TOLERANCE:
        reasons.append(
            f"the hypervisor withheld {steal_share:.0%} of the CPU time this run needed "
            f"(tolerance {STEAL_TOLERANCE:.0%})"
        )
    return "; ".join(reasons) or None
