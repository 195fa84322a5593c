"""One line describing the machine a benchmark ran on, for the committed result tables."""

from __future__ import annotations

import datetime
import os
import platform


def machine_line() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
        mem = f"{mem_kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        mem = "? GiB"
    day = datetime.date.today().isoformat()
    return f"{cpu}, {os.cpu_count()} cores, {mem}, {platform.system()} {platform.machine()}, Python {platform.python_version()}, {day}"
