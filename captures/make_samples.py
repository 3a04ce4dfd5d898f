"""Make the sample captures in this folder: simulated chargers through the real recorder.

Each sample is a real run on loopback: the built-in central system, the relay engine recording in
front of it, and simulated chargers driven through the acceptance scenario. Run from the repository
root:

    python captures/make_samples.py            # all samples, replacing the old ones
    python captures/make_samples.py lab-good   # one
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from ocpp_audit.cli.demo import run_demo

HERE = Path(__file__).parent

SAMPLES: dict[str, dict[str, str]] = {
    # One well-behaved charger: passes all 16 functions and every protocol check.
    "lab-good": {"LAB-GOOD-01": "good"},
    # One charger per real-world fault; each fails exactly the function its fault touches.
    "lab-faults": {
        "LAB-NOSERIAL": "no-serial",
        "LAB-SLOWHB": "slow-heartbeat",
        "LAB-REJECTCFG": "rejects-change-configuration",
        "LAB-SPARSEMV": "sparse-meter-values",
        "LAB-DROPSMV": "drops-queued-meter-values",
        "LAB-MALFORMED": "malformed-frame",
    },
}


def main(names: list[str]) -> None:
    for name in names or list(SAMPLES):
        target = HERE / name
        shutil.rmtree(target, ignore_errors=True)
        result = asyncio.run(run_demo(target, chargers=SAMPLES[name], progress=print))
        print(f"{name}: {result.frames} events in {result.parts} part(s)")


if __name__ == "__main__":
    main(sys.argv[1:])
