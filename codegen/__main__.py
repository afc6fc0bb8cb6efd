"""`python -m codegen [--check]`: spec/ → generated/ (and handler skeletons)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import runtime  # noqa: F401  (first: silences connexion's import-time warning)
from codegen.pipeline import run


def main() -> int:
    parser = argparse.ArgumentParser(prog="codegen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when generated/ is stale")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    args = parser.parse_args()
    return run(args.root.resolve(), check=args.check)


if __name__ == "__main__":
    sys.exit(main())
