import argparse
import sys
from pathlib import Path

from .. import fsutil
from . import document, previous_parts, run, sections

parser = argparse.ArgumentParser(prog="python -m tinylr.bench", description="Run the benchmarks, write docs/benchmarks.md.")
parser.add_argument("--out", type=Path, default=Path("build/bench"), help="working folder")
parser.add_argument("--doc", type=Path, default=Path("docs/benchmarks.md"))
parser.add_argument("--only", action="append", help=f"run only these sections: {', '.join(sections())}")
args = parser.parse_args()
parts = run(args.out, args.only)
if args.only and args.doc.is_file():  # keep the sections not rerun, in their order
    parts = {**previous_parts(args.doc.read_text()), **parts}
fsutil.write_text(args.doc, document(parts))
print(f"wrote {args.doc}")
sys.exit(1 if any("FAILED in this run" in p for p in parts.values()) else 0)
