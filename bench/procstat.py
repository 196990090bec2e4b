"""CPU time, resident memory and CPU pinning of processes, from /proc."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_cpu_seconds() -> float:
    """CPU of this process's waited-for children (the load generator runs)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def pin_all_threads(pid: int, cpus: set[int]) -> None:
    """Pins every thread of an already running process (taskset -a -p)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:
            pass


def renice_all_threads(pid: int, nice: int) -> None:
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.setpriority(os.PRIO_PROCESS, int(tid), nice)
        except ProcessLookupError:
            pass


def cpu_busy_jiffies() -> dict[int, tuple[int, int]]:
    """Per CPU: (busy, total) jiffies since boot, every process counted."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *vals = line.split()
        if name.startswith("cpu") and name != "cpu":
            v = [int(x) for x in vals[:8]]
            idle = v[3] + v[4]
            out[int(name[3:])] = (sum(v) - idle, sum(v))
    return out


@dataclass
class CpuMeter:
    """CPU seconds of named processes between start() and stop()."""

    pids: dict[str, int]

    def start(self) -> "CpuMeter":
        self.before = {n: cpu_seconds(p) for n, p in self.pids.items()}
        self.children_before = children_cpu_seconds()
        self.cores_before = cpu_busy_jiffies()
        return self

    def stop(self) -> dict[str, float]:
        out = {n: cpu_seconds(p) - self.before[n] for n, p in self.pids.items()}
        out["loadgen"] = children_cpu_seconds() - self.children_before
        cores = cpu_busy_jiffies()
        for cpu, (busy, total) in cores.items():
            b0, t0 = self.cores_before.get(cpu, (0, 0))
            out[f"cpu{cpu}%"] = 100 * (busy - b0) / max(1, total - t0)
        return out
