"""Generate the construction schedule-adherence dataset (seeded, realistic, no downloads).

One row per project activity: planned schedule, crew and supply facts, site conditions and a
label saying whether the activity finished on time. A few features drive delays, a few are
noise, and delays are the minority class, as on real sites.

    python examples/construction_delays/generate.py activities.csv --rows 4000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT_TYPES = ("residential", "commercial", "infrastructure", "industrial")
ACTIVITIES = ("excavation", "foundation", "framing", "roofing", "mep", "finishing", "paving")
REGIONS = ("north", "south", "east", "west")


def generate(rows: int = 4000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    project_type = rng.choice(PROJECT_TYPES, rows, p=[0.4, 0.3, 0.2, 0.1])
    activity = rng.choice(ACTIVITIES, rows)
    month = rng.integers(1, 13, rows)
    winter = np.isin(month, (12, 1, 2)).astype(float)
    planned_days = np.round(rng.gamma(3.0, 6.0, rows) + 2)
    crew_size = rng.integers(3, 40, rows)
    subcontractors = rng.poisson(2.0, rows)
    material_lead_days = np.round(rng.gamma(2.0, 7.0, rows), 1)
    rain_days = rng.poisson(2 + 4 * winter, rows)
    change_orders = rng.poisson(0.8 + 0.8 * (project_type == "infrastructure"), rows)
    failed_inspections = rng.poisson(0.4, rows)
    permit_wait_days = np.round(rng.exponential(4.0, rows), 1)
    float_days = np.round(np.clip(rng.normal(3.0, 2.5, rows), 0, None), 1)
    budget_musd = np.round(rng.lognormal(1.0, 0.9, rows), 2)
    # useless but plausible columns
    site_manager_tenure_years = np.round(rng.uniform(0.5, 25, rows), 1)
    crew_shift_start_hour = rng.integers(6, 9, rows)
    logit = (
        -2.8
        + 0.09 * (material_lead_days - 14)
        + 0.22 * rain_days
        + 0.55 * change_orders
        + 0.7 * failed_inspections
        + 0.06 * permit_wait_days
        - 0.35 * float_days
        + 0.25 * subcontractors
        - 0.02 * (crew_size - 20)
        + 0.4 * (activity == "excavation")
        + 0.3 * (project_type == "infrastructure")
    )
    p_delay = 1 / (1 + np.exp(-logit))
    delayed = rng.random(rows) < p_delay
    noise = rng.random(rows) < 0.03  # mislabelled reports, as in any site log
    delayed = np.where(noise, ~delayed, delayed)
    frame = pd.DataFrame(
        {
            "activity_id": [f"A{i:06d}" for i in range(rows)],
            "project_id": [f"P{int(i):04d}" for i in rng.integers(0, rows // 8 + 1, rows)],
            "project_type": project_type,
            "activity": activity,
            "region": rng.choice(REGIONS, rows),
            "start_month": month,
            "planned_days": planned_days,
            "crew_size": crew_size,
            "subcontractors": subcontractors,
            "material_lead_days": material_lead_days,
            "rain_days": rain_days,
            "change_orders": change_orders,
            "failed_inspections": failed_inspections,
            "permit_wait_days": permit_wait_days,
            "schedule_float_days": float_days,
            "budget_musd": budget_musd,
            "site_manager_tenure_years": site_manager_tenure_years,
            "crew_shift_start_hour": crew_shift_start_hour,
            "status": np.where(delayed, "delayed", "on_time"),
        }
    )
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    generate(args.rows, args.seed).to_csv(args.out, index=False)
    print(f"wrote {args.out} ({args.rows} activities)")


if __name__ == "__main__":
    main()
