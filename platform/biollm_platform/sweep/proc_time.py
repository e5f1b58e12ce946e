"""When the current process started, in epoch seconds (Linux ``/proc``; None elsewhere).

Used only for the fixed-cost breakdown in a trial's ``ray_timing.json``: how long Ray took to start a
trial's processes versus how long they spent importing before the trial's code ran.
"""

from __future__ import annotations

import os


def process_started_at() -> float | None:
    """Epoch seconds at which this process started, or None where /proc is not available."""
    try:
        with open(f"/proc/{os.getpid()}/stat") as stat_file:
            fields = stat_file.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as system:
            boot = next(float(line.split()[1]) for line in system if line.startswith("btime"))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
