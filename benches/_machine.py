"""One line describing the machine a benchmark ran on, and the records/table files of a benchmark."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any, Callable


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


def results_args(doc: str | None) -> argparse.ArgumentParser:
    """The ``--out`` / ``--table`` options every recording benchmark takes."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="write the records (<out minus .md>.json) and the table (markdown) here")
    ap.add_argument("--table", help="print the table of these records (no measuring)")
    return ap


def print_table(path: str, table: Callable[[Any], str]) -> None:
    print(table(json.loads(Path(path).read_text())))


def save(out: str, name: str, rec: Any, text: str) -> None:
    """Records to ``<out>.json`` and the table generated from them to ``out``."""
    path = Path(out)
    path.with_suffix(".json").write_text(json.dumps(rec, indent=1) + "\n")
    path.write_text(f"# {name}\n\n`python benches/{name}.py --out {out}` "
                    f"(table: `--table {path.with_suffix('.json')}`)\n\n" + text + "\n")
