"""Command-line entry points (``empg-train``)."""

from __future__ import annotations

import argparse
import sys


def train_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="empg-train",
        description="Train a language model to reason with EM Policy Gradient.",
    )
    parser.parse_args(argv)
    print("empg-train: the trainer is not built yet; see README.md", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(train_main())
