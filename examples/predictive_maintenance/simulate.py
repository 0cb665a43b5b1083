"""Write simulated vibration recordings of a machine fleet, one CSV per recording in a folder per
condition (normal, imbalance, misalignment, bearing_fault), as board data collection does.

    python examples/predictive_maintenance/simulate.py recordings --machines 8
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeloop.sim import simulate_fleet, write_recordings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--machines", type=int, default=8)
    parser.add_argument("--recordings", type=int, default=10, help="per machine and condition")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    recordings = simulate_fleet(
        machines=args.machines,
        recordings_per_condition=args.recordings,
        seconds=args.seconds,
        seed=args.seed,
    )
    write_recordings(recordings, args.out)
    print(f"wrote {len(recordings)} recordings to {args.out}")


if __name__ == "__main__":
    main()
