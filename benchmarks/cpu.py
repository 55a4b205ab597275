"""CPU accounting for the benchmarks (Linux /proc): how much CPU work a timed window held.

Where the machine's busy core-seconds divided by its cores come near a window's wall time, the
window was CPU-bound (the portal, PostgreSQL and cloudsim share the cores) rather than waiting,
and only less work or more cores make it shorter.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
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
    """User + system CPU-seconds of a process itself. (Not its waited-for children's: those
    arrive all at once when a child ends, PostgreSQL's postmaster would count every closed
    backend's life again; name the children instead, `process_tree`.)"""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(float(f) for f in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def process_tree(*roots: int) -> Callable[[], list[int]]:
    """A `CpuWindow` group: processes `roots` and their descendants as they are at each end of
    the window (a prefork worker's pool processes)."""

    def pids() -> list[int]:
        found, waiting = [], list(roots)
        while waiting:
            pid = waiting.pop()
            found.append(pid)
            for children in Path(f"/proc/{pid}/task").glob("*/children"):
                try:
                    waiting += [int(child) for child in children.read_text().split()]
                except OSError:
                    continue
        return found

    return pids


def processes_named(command: str) -> Callable[[], list[int]]:
    """A `CpuWindow` group: the machine's processes whose command is `command` (PostgreSQL's
    server processes, say: its backends come and go with connections)."""

    def pids() -> list[int]:
        found = []
        for comm in Path("/proc").glob("[0-9]*/comm"):
            try:
                if comm.read_text().strip() == command:
                    found.append(int(comm.parent.name))
            except OSError:
                continue
        return found

    return pids


def busy_core_seconds(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> float | None:
    """The machine's busy core-seconds between two `machine_cpu_seconds` readings, or None."""
    if before is None or after is None:
        return None
    return after[0] - before[0]


# A named process, several (their sum), or a function naming them, asked at both ends of the
# window (one that appears in between counts from zero; one that ended takes its CPU along).
Processes = int | Iterable[int] | Callable[[], Iterable[int]]


def _pids(processes: Processes) -> list[int]:
    if isinstance(processes, int):
        return [processes]
    return list(processes() if callable(processes) else processes)


class CpuWindow:
    """The CPU a window held: the machine's busy and available core-seconds (`busy`,
    `available`; None without /proc/stat) and each named group of processes' own CPU-seconds
    (`processes`). A `with` block, or `start()` and `stop()` where the window does not follow
    a block (it starts in a commit callback)."""

    def __init__(self, **processes: Processes) -> None:
        self._processes = {name: (p if callable(p) else _pids(p)) for name, p in processes.items()}
        self.busy: float | None = None
        self.available: float | None = None
        self.processes: dict[str, float] = {}

    def _readings(self) -> dict[str, dict[int, float]]:
        return {
            name: {pid: process_cpu_seconds(pid) for pid in _pids(processes)}
            for name, processes in self._processes.items()
        }

    def start(self) -> CpuWindow:
        self._machine = machine_cpu_seconds()
        self._before = self._readings()
        return self

    def stop(self) -> None:
        machine = machine_cpu_seconds()
        self.busy = busy_core_seconds(self._machine, machine)
        if self._machine is not None and machine is not None:
            self.available = machine[1] - self._machine[1]
        self.processes = {
            name: sum(seconds - self._before[name].get(pid, 0.0) for pid, seconds in now.items())
            for name, now in self._readings().items()
        }

    def __enter__(self) -> CpuWindow:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def breakdown(self) -> str:
        """`12.3 core-s (this 4.0, cloudsim 7.2, the rest 1.1)`."""
        if self.busy is None:
            return "not measured (no /proc/stat)"
        parts = [f"{name} {seconds:.1f}" for name, seconds in self.processes.items()]
        # The machine's and the processes' clocks tick apart: a rest within a tick reads as 0.
        parts.append(f"the rest {max(0.0, self.busy - sum(self.processes.values())):.1f}")
        return f"{self.busy:.1f} core-s ({', '.join(parts)})"
