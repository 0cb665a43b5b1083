"""``edgeloop demo``: the simulated field the devices of stages 7 and 8 see.

:class:`DeployedModels` loads the ``machine-condition`` versions devices run (the edge
export's feature block and int8 network), :func:`field_data` makes the field at the demo's
sites (the machines the pipeline trained on, recorded anew) and :func:`fleet_sources` the
simulated fleet's data source (sketches through each device's own model) and sample source
(raw windows for opted-in devices).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from edgeloop import registry
from edgeloop.cli._demo_fleet import MODEL, SITES, FleetStage
from edgeloop.errors import NotFound
from edgeloop.monitoring import probabilities
from edgeloop.sim import FieldData, FieldModel
from edgeloop.workspace import Workspace

__all__ = ["WINDOW_S", "DeployedModels", "FleetSources", "field_data", "fleet_sources"]

WINDOW_S = 10
"""The monitors' window (seconds); devices send telemetry twice per window."""


class DeployedModels:
    """The ``machine-condition`` versions devices run, as the field needs them (loaded once):
    the edge export's feature block and int8 network."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._models: dict[int, tuple[FieldModel, Callable[[Any], Any]]] = {}
        self._lock = threading.Lock()

    def get(self, version: int) -> tuple[FieldModel, Callable[[Any], Any]]:
        """``(FieldModel, predict)`` of ``machine-condition`` ``version``."""
        with self._lock:
            if version in self._models:
                return self._models[version]
        from edgeloop.edge.runtime import QuantizedModel
        from edgeloop.train import FeaturePipeline

        wanted = ("edge/manifest.json", "edge/int8/model.npz")
        files = {
            f.path: self.ws.artifacts.get_bytes(f.digest)
            for f in registry.model_version_files(self.ws, MODEL, version)
            if f.path in wanted
        }
        if set(files) != set(wanted):
            raise NotFound(f"models:/{MODEL}/{version} has no int8 edge export")
        pipeline = FeaturePipeline.from_dict(json.loads(files[wanted[0]])["preprocessing"])
        network = QuantizedModel.from_bytes(files[wanted[1]])

        def proba(x: Any) -> Any:
            return probabilities(network.scores(np.asarray(x, dtype=np.float32)), "logits")

        def predict(x: Any) -> Any:
            return np.asarray(network.predict(np.asarray(x, dtype=np.float32)))

        model = FieldModel(f"v{version}", features=pipeline.transform, proba=proba)
        with self._lock:
            return self._models.setdefault(version, (model, predict))


def field_data(ws: Workspace, windows: str, *, seed: int = 0, recordings: int = 12) -> FieldData:
    """The field at :data:`SITES`: the machines the pipeline trained on (its split by
    machine, recomputed), each recorded ``recordings`` times per condition anew."""
    from edgeloop.datasets import SplitSpec, assign_split, load_table
    from edgeloop.sim.steps import machine_of

    _, rows = load_table(ws, windows)
    machines = np.asarray([machine_of(str(s)) for s in rows.column("sample_id").to_pylist()])
    side = assign_split(
        pa.table({"machine": machines}),
        SplitSpec(method="group", group="machine", test=0.25, seed=0),
    )
    trained = sorted(set(machines[side == "train"].tolist()))
    kinds = ("pump-a", "fan-b")  # simulate_fleet's machine i is kinds[i % 2]
    pairs = [(m, kinds[int(m.rsplit("-", 1)[1]) % 2]) for m in trained]
    return FieldData(list(SITES), machines=pairs, recordings=recordings, seed=seed)


@dataclass
class FleetSources:
    """The simulated fleet's data: ``options`` for :class:`~edgeloop.fleet.DeviceFleet`
    (sketches through each device's model, raw windows for opted-in devices); ``bind`` it to
    the stage once the fleet exists. Devices send sketches only while ``sketching``: from
    the closed loop (stage 8) on, to its end (stage 7's rollouts need none)."""

    options: dict[str, Any]
    stage: FleetStage | None = None
    sketching: bool = False

    def bind(self, stage: FleetStage) -> None:
        self.stage = stage


def fleet_sources(
    field: FieldData, models: DeployedModels, *, window_s: int = WINDOW_S
) -> FleetSources:
    """The simulated fleet's data from ``field`` (see :class:`FleetSources`); devices send
    telemetry (and sketches) twice per monitoring window."""
    index: dict[str, Any] = {}

    def model_for(device_id: str) -> FieldModel | None:
        if sources.stage is None or not sources.sketching:
            return None
        if not index:
            index.update({d.id: d for d in sources.stage.fleet.devices})
        dev = index.get(device_id)
        if dev is None or dev.model_version is None:
            return None
        return models.get(int(dev.model_version))[0]

    def samples(device_id: str, tags: dict[str, str], n: int, now_ms: int) -> list[dict[str, Any]]:
        site = tags.get("site", "")
        return field.rows(device_id, site, n, now_ms) if site in field.sites else []

    sources = FleetSources(
        options={
            "data_source": field.source(model_for),
            "sample_source": samples,
            "collect_share": 0.25,
            "telemetry_interval": 0.5 * window_s,
        }
    )
    return sources
