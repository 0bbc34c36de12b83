"""`make bench`: run every benchmark, print a summary, update docs/BENCHMARKS.md.

    python -m bench            # all benchmarks (about 15 minutes here)
    python -m bench --quick    # a few minutes
    python -m bench ws         # only the named ones
"""

import argparse
import importlib
import sys

BENCHMARKS = {
    "vad": "bench.vad",
    "ws": "bench.ws_delivery",
    "storage": "bench.storage",
    "cameras": "bench.cameras",
    "latency": "bench.latency",
    "torch": "bench.torch_batch",
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer steps")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    summary = []
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        summary.append((name, module.run(quick=args.quick)))
    print("\nSummary")
    for name, line in summary:
        print(f"  {name:10s} {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
