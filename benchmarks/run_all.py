"""Run every benchmark in turn (what `make bench` runs); each rewrites its own section of docs/benchmarks.md.

The development traces are read from ../shared/data/traces beside the repository (RECHARGE_TRACES overrides).
Expect several minutes on a 2-core machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = ("forecast_bench.py", "policy_bench.py", "availability_bench.py", "sim_speed.py",
               "sim_year_bench.py",
               "batch_bench.py", "fleet_bench.py")
    for script in scripts:
        print(f"== {script}", flush=True)
        rc = subprocess.call([sys.executable, str(HERE / script)])
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
