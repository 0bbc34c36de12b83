"""`make bench`: run every benchmark, print a summary, update docs/BENCHMARKS.md.

    python -m bench            # all benchmarks (about 33 minutes here, 11.5 of them `cameras`, 3.5 `describe`, 14 `recordings`)
    python -m bench --quick    # all of them shorter (about 5 minutes)
    python -m bench ws         # only the named ones
"""

import argparse
import importlib
import subprocess
import sys
import time

RESULT = "bench-result: "

BENCHMARKS = {
    "vad": "bench.vad",
    "ws": "bench.ws_delivery",
    "storage": "bench.storage",
    "cameras": "bench.cameras",
    "latency": "bench.latency",
    "torch": "bench.torch_batch",
    "objects": "bench.objects",
    "describe": "bench.describe",
    "health": "bench.health",
    "recordings": "bench.recordings",
}


def reference_loop() -> float:
    """Seconds for 10,000,000 additions in pure Python: how fast this machine was when a benchmark began
    (a shared virtual machine's speed is not constant), to compare runs by."""
    began = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - began


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer steps")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.in_process:  # one benchmark, in this process (each gets a fresh one: its own Django settings)
        (name,) = args.names
        print(RESULT + importlib.import_module(BENCHMARKS[name]).run(quick=args.quick), flush=True)
        return 0
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    summary = []
    began = time.monotonic()
    for name in names:
        speed = reference_loop()
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "bench", name, "--in-process"] + (["--quick"] if args.quick else []),
                              stdout=subprocess.PIPE, text=True)
        sys.stdout.write(proc.stdout)
        lines = [line[len(RESULT):] for line in proc.stdout.splitlines() if line.startswith(RESULT)]
        line = lines[-1] if lines and proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        summary.append((name, time.monotonic() - t0, speed, line))
    total = time.monotonic() - began
    rows = "".join(f"| {name} | {seconds / 60:.1f} min | {speed:.2f} s | {line} |\n"
                   for name, seconds, speed, line in summary)
    table = (f"| benchmark | took | machine speed before it | result |\n|---|---|---|---|\n{rows}"
             f"| **all** | **{total / 60:.1f} min** | | |\n\n"
             "Machine speed: seconds for 10,000,000 additions in pure Python (`bench.__main__.reference_loop`; lower "
             "is faster), taken before each benchmark. The speed of this shared virtual machine is not constant (the same "
             "code has measured up to twice as slow on one day), and with it every figure that is not a fixed "
             "duration.\n")
    print("\nSummary\n" + table)
    if not args.names:  # a whole run: record how long each part took
        from bench.report import write_section

        write_section("run", "The whole run", table, "python -m bench" + (" --quick" if args.quick else ""))
    return 0 if all(not line.startswith("FAILED") for *_, line in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
