"""README.md quotes benchmark tables: the block between ``<!-- from: PATH -->`` and ``<!-- /from -->``
is the body of the generated file PATH (its text after the title and command lines), or with
``PATH#Heading`` the text of its section ``## Heading`` only, so a README number is never typed in.
``--check`` fails when a block differs from its file (a test runs it).

    python scripts/readme_tables.py           # copy every quoted table from its file
    python scripts/readme_tables.py --check   # exit 1 if README.md is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- from: (\S+) -->\n).*?(<!-- /from -->)", re.S)


def body(path: Path, section: str = "") -> str:
    """The generated file's text from its first line that is neither the title, blank nor a command;
    with ``section``, the lines under its heading ``## section`` up to the next ``## `` heading."""
    lines = path.read_text().splitlines()
    if section:
        start = lines.index(f"## {section}") + 1
        end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
        return "\n".join(lines[start:end]).strip() + "\n"
    start = next(i for i, line in enumerate(lines)
                 if line.strip() and not line.startswith("#") and not line.startswith("`python "))
    return "\n".join(lines[start:]).strip() + "\n"


def quoted(ref: str) -> str:
    path, _, section = ref.partition("#")
    return body(REPO / path, section)


def render(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + quoted(m.group(2)) + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    readme = REPO / "README.md"
    old = readme.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print("README.md quotes stale tables: run scripts/readme_tables.py", file=sys.stderr)
            return 1
        return 0
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
