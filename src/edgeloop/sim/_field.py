"""Field data for a simulated device fleet: what each device's model sees at its site.

:class:`FieldData` simulates the machines at each site (the same kinds of machine the model
was trained on, or whatever :class:`~edgeloop.sim.Drift` a site is under) and cuts their
recordings into the windows the devices classify. Windows are computed once per site and
drift state, a *pool*, so thousands of devices stay cheap: a device draws its windows from its
site's pool.

The model side is given, not imported (this package sits below the edge and fleet layers):
:meth:`FieldData.source` takes ``model_for(device_id)``, which names what a device runs as a
:class:`FieldModel` (a key, the model's feature block and its class probabilities), and
returns the ``data_source(device_id, tags, n, now_ms) -> (features, proba)`` a simulated fleet
feeds its monitoring sketches from. Features and probabilities are computed once per pool and
model. :meth:`FieldData.rows` gives raw windows in a windowed dataset's row layout, for the
devices that upload samples, and :meth:`FieldData.accuracy` scores a model on a site.

>>> field = FieldData(["plant-1", "plant-2"], seed=7)
>>> field.set_drift("plant-2", Drift(gain=0.6))
>>> windows, labels, machines = field.pool("plant-2")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeloop.errors import ValidationFailed
from edgeloop.sim._fleet import AXES
from edgeloop.sim._machines import CONDITIONS, Drift, _integer, _machine_type
from edgeloop.sim._physics import simulate_recording

__all__ = ["DataSource", "FieldData", "FieldModel"]

Floats = npt.NDArray[np.float64]
DataSource = Callable[[str, dict[str, str], int, int], tuple[Floats, Floats] | None]
"""``data_source(device_id, tags, n, now_ms) -> (features (n, F), proba (n, C))`` or None."""


@dataclass(frozen=True)
class FieldModel:
    """What a device runs, as the field needs it: ``key`` names it (the cache key),
    ``features(windows (n, length, axes)) -> (n, F)`` is its feature block and
    ``proba(features) -> (n, C)`` its class probabilities."""

    key: str
    features: Callable[[npt.NDArray[np.float32]], npt.ArrayLike]
    proba: Callable[[Floats], npt.ArrayLike]


@dataclass(frozen=True)
class _Pool:
    windows: npt.NDArray[np.float32]  # (n, length, axes)
    labels: npt.NDArray[np.str_]
    machines: npt.NDArray[np.str_]


def _digest(*parts: object) -> int:
    text = "\x1f".join(str(p) for p in ("edgeloop.sim.field", *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


class FieldData:
    """The machines at ``sites`` and what a device's model sees of them.

    Every site runs ``machines`` machines (ids and types: by default ``machine-00`` ..
    ``machine-05``, pump-a and fan-b in turn, the machines of
    :func:`~edgeloop.sim.simulate_fleet`'s default fleet), each recorded ``recordings`` times
    per condition for ``seconds`` at ``sample_rate`` Hz, with recording indices from
    ``first_index`` on (so the field is not the training data), cut into windows of
    ``window`` samples every ``stride`` samples. A site's :class:`Drift`, set with
    :meth:`set_drift`, applies to its recordings from then on.
    """

    def __init__(
        self,
        sites: Sequence[str],
        *,
        machines: Sequence[tuple[str, str]] | None = None,
        recordings: int = 4,
        seconds: float = 2.0,
        sample_rate: float = 1000.0,
        window: int = 500,
        stride: int = 250,
        first_index: int = 1000,
        seed: int = 0,
    ) -> None:
        if isinstance(sites, str) or not sites or len(set(sites)) != len(sites):
            raise ValidationFailed(f"sites must be a list of distinct names; got {sites!r}")
        self.sites = list(sites)
        pairs = list(
            machines
            if machines is not None
            else [(f"machine-{i:02d}", ("pump-a", "fan-b")[i % 2]) for i in range(6)]
        )
        if not pairs:
            raise ValidationFailed("machines must name at least one (machine_id, type) pair")
        for _, kind in pairs:
            _machine_type("machines", kind)
        self.machines = pairs
        self.recordings = _integer("recordings", recordings, low=1)
        self.seconds, self.sample_rate = float(seconds), float(sample_rate)
        self.window = _integer("window", window, low=2)
        self.stride = _integer("stride", stride, low=1)
        if round(self.seconds * self.sample_rate) < self.window:
            raise ValidationFailed(
                f"a recording of {seconds:g} s at {sample_rate:g} Hz is shorter than a window "
                f"of {window} samples"
            )
        self.first_index = _integer("first_index", first_index, low=0)
        self.seed = int(seed)
        self._drift: dict[str, Drift] = {}
        self._pools: dict[tuple[str, Drift], _Pool] = {}
        self._seen: dict[tuple[str, Drift, str], tuple[Floats, Floats]] = {}
        self._lock = threading.Lock()

    # ---- sites and drift ------------------------------------------------------------------

    def _site(self, site: str) -> str:
        if site not in self.sites:
            raise ValidationFailed(f"site {site!r} is not one of {', '.join(self.sites)}")
        return site

    def set_drift(self, site: str, drift: Drift | None) -> None:
        """Put ``site`` under ``drift`` from now on (None: back to no drift)."""
        if drift is not None and not isinstance(drift, Drift):
            raise ValidationFailed(f"drift must be an edgeloop.sim.Drift or None; got {drift!r}")
        if drift is None or drift == Drift():
            self._drift.pop(self._site(site), None)
        else:
            self._drift[self._site(site)] = drift

    def drift(self, site: str) -> Drift:
        """The drift ``site`` is under (``Drift()`` for none)."""
        return self._drift.get(self._site(site), Drift())

    # ---- windows ----------------------------------------------------------------------------

    def _pool(self, site: str, drift: Drift, index_offset: int = 0) -> _Pool:
        key = (site, drift) if not index_offset else (f"{site}#{index_offset}", drift)
        with self._lock:
            found = self._pools.get(key)
        if found is not None:
            return found
        windows, labels, machines = [], [], []
        starts = range(0, round(self.seconds * self.sample_rate) - self.window + 1, self.stride)
        for machine_id, kind in self.machines:
            for condition in CONDITIONS:
                for r in range(self.recordings):
                    severity = 1.0
                    if condition != "normal":
                        severity = (
                            0.7 + 0.6 * (_digest(self.seed, machine_id, condition, r) % 1000) / 999
                        )
                    recording = simulate_recording(
                        machine_id=machine_id,
                        machine_type=kind,
                        condition=condition,
                        seconds=self.seconds,
                        sample_rate=self.sample_rate,
                        seed=self.seed + _digest(site) % 1_000_003,
                        site=site,
                        drift=drift,
                        severity=severity,
                        index=self.first_index + index_offset + r,
                    )
                    for start in starts:
                        windows.append(recording.signal[start : start + self.window])
                        labels.append(condition)
                        machines.append(machine_id)
        pool = _Pool(
            windows=np.ascontiguousarray(np.stack(windows), dtype=np.float32),
            labels=np.asarray(labels),
            machines=np.asarray(machines),
        )
        with self._lock:
            return self._pools.setdefault(key, pool)

    def pool(
        self, site: str, *, held_out: bool = False
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.str_], npt.NDArray[np.str_]]:
        """``(windows (n, window, 3), labels, machine ids)`` of ``site`` under its current
        drift; ``held_out``: other recordings of the same machines (for scoring models on
        windows no device uploaded)."""
        pool = self._pool(self._site(site), self.drift(site), 1_000_000 if held_out else 0)
        return pool.windows, pool.labels, pool.machines

    def _draw(self, device_id: str, site: str, n: int, now_ms: int) -> tuple[_Pool, Any]:
        """``n`` windows of the site's machines, drawn for one device and moment; every
        device sees the site's mix of machines and conditions, as the training data did."""
        pool = self._pool(site, self.drift(site))
        rng = np.random.default_rng(_digest(self.seed, device_id, now_ms))
        return pool, rng.integers(0, len(pool.labels), size=n)

    # ---- what devices see and upload ------------------------------------------------------

    def seen(self, site: str, model: FieldModel) -> tuple[Floats, Floats]:
        """``(features, proba)`` of ``model`` on ``site``'s current pool (computed once)."""
        drift = self.drift(self._site(site))
        key = (site, drift, model.key)
        with self._lock:
            found = self._seen.get(key)
        if found is not None:
            return found
        windows = self._pool(site, drift).windows
        features = np.asarray(model.features(windows), dtype=np.float64)
        proba = np.asarray(model.proba(features), dtype=np.float64)
        if features.shape[0] != windows.shape[0] or proba.shape[0] != windows.shape[0]:
            raise ValidationFailed(
                f"model {model.key!r} gave {features.shape[0]} feature rows and "
                f"{proba.shape[0]} probability rows for {windows.shape[0]} windows"
            )
        with self._lock:
            return self._seen.setdefault(key, (features, proba))

    def source(self, model_for: Callable[[str], FieldModel | None]) -> DataSource:
        """The ``data_source`` of a simulated fleet: ``n`` windows of the machines at the
        device's site (``tags["site"]``) through the model ``model_for(device_id)`` names (None:
        the device runs nothing, so it sends no sketch)."""

        def data_source(
            device_id: str, tags: dict[str, str], n: int, now_ms: int
        ) -> tuple[Floats, Floats] | None:
            site = tags.get("site")
            model = model_for(device_id)
            if model is None or site not in self.sites or n <= 0:
                return None
            features, proba = self.seen(site, model)
            _, picked = self._draw(device_id, site, n, now_ms)
            return features[picked], proba[picked]

        return data_source

    def rows(self, device_id: str, site: str, n: int, now_ms: int) -> list[dict[str, Any]]:
        """``n`` labelled windows of the device's site, as rows of a windowed recordings
        dataset (``sample_id``, ``window``, ``start_ms``, ``label``, ``acc_x/y/z``, rounded
        to 10 µg); the sample id starts with the device id, so a split by machine keeps a
        device's windows on one side."""
        pool, picked = self._draw(device_id, self._site(site), n, now_ms)
        out = []
        for i, index in enumerate(picked.tolist()):
            window = pool.windows[index]
            row: dict[str, Any] = {
                "sample_id": f"{device_id}/{pool.labels[index]}/{now_ms}-{i:04d}",
                "window": 0,
                "start_ms": 0.0,
                "label": str(pool.labels[index]),
            }
            for axis, name in enumerate(AXES):
                row[name] = np.round(window[:, axis].astype(np.float64), 5).tolist()
            out.append(row)
        return out

    def accuracy(self, site: str, model: FieldModel, predict: Callable[[Floats], Any]) -> float:
        """The share of ``site``'s held-out windows (under its current drift) that
        ``predict(features)`` labels right."""
        windows, labels, _ = self.pool(site, held_out=True)
        predicted = np.asarray(predict(np.asarray(model.features(windows), dtype=np.float64)))
        return float(np.mean(predicted.astype(str) == labels))
