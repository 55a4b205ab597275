"""CPU accounting for the benchmarks (Linux /proc): how much CPU work a timed window held.

Where the machine's busy core-seconds divided by its cores come near a window's wall time, the
window was CPU-bound (the portal, PostgreSQL and cloudsim share the cores) rather than waiting,
and only less work or more cores make it shorter.
"""

from __future__ import annotations

import os
from pathlib import Path


def machine_cpu_seconds() -> tuple[float, float] | None:
    """(busy, all) CPU-seconds of the whole machine since boot, from /proc/stat (Linux)."""
    try:
        fields = [float(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU-seconds of a process and its waited-for children (prefork slots)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(float(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def busy_core_seconds(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> float | None:
    """The machine's busy core-seconds between two `machine_cpu_seconds` readings, or None."""
    if before is None or after is None:
        return None
    return after[0] - before[0]


class CpuWindow:
    """The CPU a `with` block's window held: the machine's busy core-seconds (`busy`, None
    without /proc/stat) and each named process's own CPU-seconds (`processes`)."""

    def __init__(self, **pids: int) -> None:
        self._pids = pids
        self.busy: float | None = None
        self.processes: dict[str, float] = {}

    def __enter__(self) -> CpuWindow:
        self._machine = machine_cpu_seconds()
        self._before = {name: process_cpu_seconds(pid) for name, pid in self._pids.items()}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.busy = busy_core_seconds(self._machine, machine_cpu_seconds())
        self.processes = {
            name: process_cpu_seconds(pid) - self._before[name] for name, pid in self._pids.items()
        }

    def breakdown(self) -> str:
        """`12.3 core-s (this 4.0, cloudsim 7.2, the rest 1.1)`."""
        if self.busy is None:
            return "not measured (no /proc/stat)"
        parts = [f"{name} {seconds:.1f}" for name, seconds in self.processes.items()]
        # The machine's and the processes' clocks tick apart: a rest within a tick reads as 0.
        parts.append(f"the rest {max(0.0, self.busy - sum(self.processes.values())):.1f}")
        return f"{self.busy:.1f} core-s ({', '.join(parts)})"
