"""Fleets of machines, and recordings as an Arrow table or a folder of CSV files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from edgeloop.errors import ValidationFailed
from edgeloop.sim._machines import (
    CONDITIONS,
    Condition,
    Drift,
    Recording,
    _condition,
    _integer,
    _machine_type,
    _number,
    _text,
)
from edgeloop.sim._physics import _rng, simulate_recording

__all__ = ["simulate_fleet", "to_table", "write_recordings"]

SEVERITY_RANGE = (0.7, 1.3)  # a fleet's faults vary in severity, uniformly in this range
AXES = ("acc_x", "acc_y", "acc_z")
TABLE_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string()),
        pa.field("label", pa.string()),
        pa.field("machine_id", pa.string()),
        pa.field("machine_type", pa.string()),
        pa.field("site", pa.string()),
        pa.field("temperature_c", pa.float64()),
        *(pa.field(axis, pa.list_(pa.float32())) for axis in AXES),
    ]
)
"""The layout of :func:`to_table` (the dataset readers' recording layout plus metadata)."""


def simulate_fleet(
    *,
    machines: int = 8,
    recordings_per_condition: int = 10,
    seconds: float = 2.0,
    sample_rate: float = 1000.0,
    seed: int = 0,
    sites: Sequence[str] = ("plant-1", "plant-2"),
    machine_types: Sequence[str] = ("pump-a", "fan-b"),
    conditions: Sequence[Condition] = CONDITIONS,
    drift: Mapping[str, Drift] | None = None,
) -> list[Recording]:
    """Simulate every machine of a fleet in every condition.

    Machine ``i`` is ``machine-{i:02d}``, of type ``machine_types[i % len(machine_types)]``, at
    site ``sites[(i // len(machine_types)) % len(sites)]`` (so every site gets every type). Each
    machine gets ``recordings_per_condition`` recordings (``index`` 0, 1, ...) per condition;
    fault severities are drawn uniformly from 0.7-1.3 per recording. ``drift`` maps a site to
    the :class:`Drift` applied to its machines. Ordered by machine, condition, index.
    """
    count = _integer("machines", machines, low=1)
    per = _integer("recordings_per_condition", recordings_per_condition, low=1)
    site_list = _names("sites", sites)
    type_list = _names("machine_types", machine_types)
    for name in type_list:
        _machine_type("machine_types", name)
    states = [_condition(c) for c in _names("conditions", conditions)]
    _number("seconds", seconds, low=0.0, low_open=True)
    _integer("seed", seed, low=-(2**63))
    drifts = dict(drift or {})
    for key, value in drifts.items():
        if key not in site_list:
            raise ValidationFailed(
                f"drift is given for site {key!r}, which is not in sites {site_list}; "
                "use one of those sites"
            )
        if not isinstance(value, Drift):
            raise ValidationFailed(f"drift[{key!r}] must be an edgeloop.sim.Drift; got {value!r}")
        if value.new_machine_type is not None:
            _machine_type(f"drift[{key!r}].new_machine_type", value.new_machine_type)
    width = max(2, len(str(count - 1)))
    recordings: list[Recording] = []
    for i in range(count):
        machine_id = f"machine-{i:0{width}d}"
        machine_type = type_list[i % len(type_list)]
        site = site_list[(i // len(type_list)) % len(site_list)]
        for state in states:
            for index in range(per):
                severity = 1.0
                if state != "normal":
                    draw = _rng("severity", seed, machine_id, state, index)
                    severity = float(draw.uniform(*SEVERITY_RANGE))
                recordings.append(
                    simulate_recording(
                        machine_id=machine_id,
                        machine_type=machine_type,
                        condition=state,
                        seconds=seconds,
                        sample_rate=sample_rate,
                        seed=seed,
                        site=site,
                        drift=drifts.get(site, Drift()),
                        severity=severity,
                        index=index,
                    )
                )
    return recordings


def to_table(recordings: Sequence[Recording]) -> pa.Table:
    """One row per recording, in order, with the schema ``TABLE_SCHEMA``: ``sample_id``
    (``machine_id/condition/index:04d``), ``label`` (the condition), ``machine_id``,
    ``machine_type``, ``site``, ``temperature_c`` (float64) and ``list<float32>`` columns
    ``acc_x``, ``acc_y``, ``acc_z``, the layout the dataset readers give sensor recordings.

    Raises :class:`ValidationFailed` for two recordings with one sample id or for recordings
    at different sample rates (a table carries one rate).
    """
    items = _checked(recordings)
    rates = sorted({r.sample_rate for r in items})
    if len(rates) > 1:
        raise ValidationFailed(
            f"the recordings have different sample rates ({', '.join(f'{x:g}' for x in rates)} "
            "Hz); a table holds one rate, so convert the rates separately"
        )
    lengths = np.array([r.signal.shape[0] for r in items], dtype=np.int64)
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:
        raise ValidationFailed("the recordings hold more than 2^31 samples; convert them in parts")
    columns: list[pa.Array] = [
        pa.array([r.sample_id for r in items], pa.string()),
        pa.array([r.condition for r in items], pa.string()),
        pa.array([r.machine_id for r in items], pa.string()),
        pa.array([r.machine_type for r in items], pa.string()),
        pa.array([r.site for r in items], pa.string()),
        pa.array([r.temperature_c for r in items], pa.float64()),
    ]
    for axis in range(len(AXES)):
        flat = [r.signal[:, axis] for r in items]
        values = np.concatenate(flat) if flat else np.zeros(0, dtype=np.float32)
        columns.append(
            pa.ListArray.from_arrays(
                pa.array(offsets.astype(np.int32)),
                pa.array(values, pa.float32()),
                type=pa.list_(pa.float32()),
            )
        )
    return pa.Table.from_arrays(columns, schema=TABLE_SCHEMA)


def write_recordings(recordings: Sequence[Recording], root: Path) -> Path:
    """Write one CSV per recording to ``root/<label>/<machine_id>-<index:04d>.csv`` and return
    ``root`` (created if needed; files of the same name are overwritten).

    Columns: ``timestamp`` in milliseconds from the start (as boards export it), then
    ``acc_x``, ``acc_y``, ``acc_z`` in g with 6 decimals. Above 1000 Hz, where a millisecond
    step is below 1 and the readers would take it for seconds, the time column is
    ``timestamp_ms`` instead. Read it back with label source ``folder``.
    """
    items = _checked(recordings)
    root = Path(root)
    for recording in items:
        folder = root / recording.condition
        folder.mkdir(parents=True, exist_ok=True)
        n = recording.signal.shape[0]
        time_name = "timestamp" if recording.sample_rate <= 1000.0 else "timestamp_ms"
        millis = np.arange(n, dtype=np.float64) * (1000.0 / recording.sample_rate)
        lines = [f"{time_name},{','.join(AXES)}"]
        values = recording.signal.astype(np.float64)
        lines += [
            f"{ms:.10g},{x:.6f},{y:.6f},{z:.6f}"
            for ms, (x, y, z) in zip(millis.tolist(), values.tolist(), strict=True)
        ]
        path = folder / f"{recording.machine_id}-{recording.index:04d}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _checked(recordings: Sequence[Recording]) -> list[Recording]:
    items = list(recordings)
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, Recording):
            raise ValidationFailed(f"expected edgeloop.sim.Recording objects; got {item!r}")
        if item.sample_id in seen:
            raise ValidationFailed(
                f"two recordings share the sample id {item.sample_id!r}; give recordings of "
                "one machine and condition distinct index values"
            )
        seen.add(item.sample_id)
    return items


def _names(name: str, values: object) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValidationFailed(f"{name} must be a list of names; got {values!r}")
    items = [_text(name, v) for v in values]
    if not items:
        raise ValidationFailed(f"{name} must not be empty")
    if len(set(items)) != len(items):
        raise ValidationFailed(f"{name} must not repeat a name; got {items}")
    return items
