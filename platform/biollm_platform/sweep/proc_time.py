"""When a process started, in epoch seconds (Linux ``/proc``; None elsewhere).

Used for the fixed-cost breakdown in a trial's ``ray_timing.json`` (how long Ray took to start a
trial's processes versus how long they spent importing) and to tell a live sweep driver from a
reused pid.
"""

from __future__ import annotations

import os


def process_started_at(pid: int | None = None) -> float | None:
    """Epoch seconds at which process ``pid`` (default: this one) started, or None where /proc is not
    available or the process does not exist."""
    try:
        with open(f"/proc/{pid or os.getpid()}/stat") as stat_file:
            fields = stat_file.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as system:
            boot = next(float(line.split()[1]) for line in system if line.startswith("btime"))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
