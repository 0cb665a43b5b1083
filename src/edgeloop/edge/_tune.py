"""Constraint-aware tuning for one board: feature blocks and an int8 MLP, searched together
against accuracy, latency and RAM (edgeloop's answer to Edge Impulse's EON Tuner).

:func:`tune` runs a multi-objective Optuna study over a dataset of windowed sensor
recordings (``sample_id``, ``label`` and ``acc_*`` list columns, as ``edgeloop data window``
makes them). A trial picks

* the feature blocks: how much of the recorded window to use (its first quarter, half or all
  of it, as ``window_samples``), the :class:`~edgeloop.train.SpectralBlock`'s ``fft_length``
  (a power of two, capped at the largest one within the window used) and ``n_bands``, and
  whether a :class:`~edgeloop.train.FlattenBlock` adds statistics;
* the network: ``Pipeline(StandardScaler, MLPClassifier)`` with 0-2 hidden ReLU layers of
  8-64 units, trained with the study's seed.

Then it trains on the training machines, quantizes to int8 (calibrated on the training
split), scores float and int8 accuracy on machines the model never saw (a group split by
``edgeloop.sim.steps.machine_of`` of ``sample_id``), generates the C library with the
feature blocks (:func:`~edgeloop.edge._cexport.export_c`) and compiles it for the target
(:func:`~edgeloop.edge._footprint.measure_c`) for flash, RAM and latency.

Objectives: maximise int8 accuracy, minimise latency and RAM. Constraints (Optuna's, via
``Trial.set_constraint``: a value <= 0 is feasible) are RAM and flash within the limits given,
and never beyond what the target has after its firmware's reserve, and latency within its
limit when one is given. Infeasible trials never enter the Pareto front; the chosen point is
the front's highest int8 accuracy (ties: lower latency, then RAM, then the earlier trial).

Every trial is a child run of the call's tuning run (params, ``float_accuracy``,
``int8_accuracy``, ``flash_kb``, ``ram_kb``, ``latency_ms``, ``feasible``; artifacts
``model/`` with the scikit-learn model, ``features.json`` and the int8 model, and
``footprint.json``). The tuning run holds the Pareto plot (``plots/pareto.svg``) and
``pareto.json``.

The study lives in the workspace's database, like :func:`edgeloop.train.search`'s: running
:func:`tune` again with the same study continues it until it holds ``trials`` completed trials
in all, and several processes can work on one study at once (each stops when the study has
``trials``; concurrent workers may overshoot by one trial each). A study remembers its dataset
version, target, limits and search space and refuses a call with others.

>>> result = tune(ws, dataset="vibration-windows@1", target="nano33ble",
...               max_latency_ms=50, max_ram_kb=64, trials=20)  # doctest: +SKIP
>>> result.chosen.int8_accuracy, result.chosen.latency_ms  # doctest: +SKIP
(0.98, 1.2)
"""

from __future__ import annotations

import io
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from edgeloop import datasets, registry, tracking
from edgeloop.edge._cexport import export_c
from edgeloop.edge._footprint import Footprint, measure_c
from edgeloop.edge._pareto import _UNITS, TunePoint, _choose, _key, pareto_front, pareto_svg
from edgeloop.edge._quantize import compare, quantize
from edgeloop.edge._service import set_footprints
from edgeloop.edge.targets import Target, get_target
from edgeloop.errors import DataRejected, ValidationFailed
from edgeloop.sim.steps import machine_of
from edgeloop.train import (
    FeaturePipeline,
    FlattenBlock,
    SpectralBlock,
    open_storage,
    windows_from_table,
)
from edgeloop.workspace import Workspace, now_ms

if TYPE_CHECKING:
    import optuna

__all__ = [
    "NoFeasiblePoint",
    "OnTunedTrial",
    "TunePoint",
    "TuneResult",
    "pareto_front",
    "pareto_svg",
    "tune",
]

_ATTR = "edgeloop.tune"
_HIDDEN_LAYERS, _WIDTHS = 2, (8, 64)
_BANDS = (4, 16)
_MIN_FFT, _MIN_WINDOW = 16, 32
_TEST_SHARE = 0.25
_MLP: dict[str, Any] = {"activation": "relu", "alpha": 1e-3, "max_iter": 300}


class NoFeasiblePoint(DataRejected):
    """No trial of the study met every limit; ``details`` names the limits never met and the
    best value seen for each."""


OnTunedTrial = Callable[[TunePoint], None]
"""Called after each trial this process runs (the CLI prints a line per trial)."""


@dataclass(frozen=True)
class TuneResult:
    """The study's completed trials, its feasible Pareto front (``front``, by latency), the
    ``chosen`` point, the tuning run (``run_id``) holding the plot at ``plot``, the trials this
    call ran (``ran``) and, with ``register``, the registered version's URI."""

    study: str
    dataset: str
    target: str
    limits: dict[str, float]
    run_id: str
    trials: list[TunePoint]
    front: list[TunePoint]
    chosen: TunePoint
    ran: int
    plot: str = "plots/pareto.svg"
    model_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k not in ("trials", "front", "chosen")},
            "trials": [p.to_dict() for p in self.trials],
            "front": [p.to_dict() for p in self.front],
            "chosen": self.chosen.to_dict(),
        }


# ---- the data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    uri: str
    digest: str
    windows: npt.NDArray[np.float32]  # (n, samples, axes)
    labels: npt.NDArray[np.str_]
    train: npt.NDArray[np.bool_]
    axes: tuple[str, ...]
    sample_rate: float


def _load(ws: Workspace, ref: str, sample_rate: float | None, seed: int) -> _Data:
    version, table = datasets.load_table(ws, ref)
    recorded = version.sensor.get("sample_rate")
    if sample_rate is None:
        sample_rate = float(recorded) if recorded else 1000.0
    elif recorded and not math.isclose(float(recorded), sample_rate):
        raise ValidationFailed(
            f"sample_rate {sample_rate:g} Hz differs from the {float(recorded):g} Hz recorded "
            f"for {version.uri}; leave it out to use the recorded rate",
            details={"field": "sample_rate"},
        )
    if not (math.isfinite(sample_rate) and sample_rate > 0):
        raise ValidationFailed(f"sample_rate must be > 0 Hz, got {sample_rate!r}")
    sensor_axes = [a for a in version.sensor.get("axes") or () if a in table.column_names]
    axes = tuple(sensor_axes or [c for c in table.column_names if c.startswith("acc_")])
    label = version.label or "label"
    missing = [c for c in ("sample_id", label) if c not in table.column_names]
    if missing or not axes:
        raise ValidationFailed(
            f"{version.uri} needs sample_id, {label} and acc_* axis columns of windowed "
            f"recordings (edgeloop data window); it has {', '.join(table.column_names)}",
            details={"field": "dataset"},
        )
    machines = [machine_of(str(s)) for s in table.column("sample_id").to_pylist()]
    side = datasets.assign_split(
        pa.table({"machine": machines}),
        datasets.SplitSpec(method="group", group="machine", test=_TEST_SHARE, seed=seed),
    )
    labels = np.asarray([str(v) for v in table.column(label).to_pylist()])
    train = side == "train"
    if len(set(labels[train].tolist())) < 2:
        raise ValidationFailed(
            f"the training machines of {version.uri} show fewer than 2 classes: tuning needs "
            "recordings of several conditions on several machines",
            details={"field": "dataset"},
        )
    return _Data(
        version.uri,
        version.digest,
        windows_from_table(table, axes),
        labels,
        train,
        axes,
        sample_rate,
    )


# ---- the search space -------------------------------------------------------------------


def _pow2_floor(n: int) -> int:
    return 1 << (max(n, 1).bit_length() - 1)


@dataclass(frozen=True)
class _Config:
    window_samples: int
    fft_length: int
    n_bands: int
    flatten: bool
    hidden: tuple[int, ...]

    def pipeline(self, axes: Sequence[str], sample_rate: float) -> FeaturePipeline:
        spectral = SpectralBlock(
            sample_rate=sample_rate, fft_length=self.fft_length, n_bands=self.n_bands
        )
        blocks = (FlattenBlock(), spectral) if self.flatten else (spectral,)
        return FeaturePipeline(blocks=blocks, axes=tuple(axes))

    def params(self) -> dict[str, Any]:
        return {**asdict(self), "hidden": list(self.hidden)}


@dataclass(frozen=True)
class _Space:
    windows: tuple[int, ...]
    ffts: tuple[int, ...]

    @classmethod
    def for_window(cls, samples: int) -> _Space:
        windows = {samples} | {w for w in (samples // 4, samples // 2) if w >= _MIN_WINDOW}
        top = _pow2_floor(samples)
        ffts = [1 << k for k in range(5, top.bit_length()) if 1 << k <= top] or [_MIN_FFT]
        return cls(tuple(sorted(windows)), tuple(ffts))

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_samples": list(self.windows),
            "fft_length": list(self.ffts),
            "n_bands": list(_BANDS),
            "hidden_layers": [0, _HIDDEN_LAYERS],
            "width": list(_WIDTHS),
        }

    def suggest(self, trial: optuna.Trial) -> _Config:
        window = int(trial.suggest_categorical("window_samples", list(self.windows)))
        fft = int(trial.suggest_categorical("fft_length", list(self.ffts)))
        fft = min(fft, max(_MIN_FFT, _pow2_floor(window)))  # the window used holds the frame
        bands = trial.suggest_int("n_bands", _BANDS[0], _BANDS[1], step=4)
        flatten = bool(trial.suggest_categorical("flatten", [True, False]))
        layers = trial.suggest_int("hidden_layers", 0, _HIDDEN_LAYERS)
        hidden = tuple(
            trial.suggest_int(f"width_{i + 1}", _WIDTHS[0], _WIDTHS[1], step=8)
            for i in range(layers)
        )
        return _Config(window, fft, min(bands, fft // 2), flatten, hidden)


# ---- limits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Limits:
    ram_kb: float
    flash_kb: float
    latency_ms: float | None

    @classmethod
    def of(
        cls, target: Target, ram: float | None, flash: float | None, latency: float | None
    ) -> _Limits:
        for name, value in (
            ("max_ram_kb", ram),
            ("max_flash_kb", flash),
            ("max_latency_ms", latency),
        ):
            _check_limit(name, value)
        ram_kb, flash_kb = target.ram_limit_bytes / 1024, target.flash_limit_bytes / 1024
        return cls(
            min(ram_kb, ram) if ram is not None else ram_kb,
            min(flash_kb, flash) if flash is not None else flash_kb,
            latency,
        )

    def to_dict(self) -> dict[str, float]:
        limits = {"ram_kb": self.ram_kb, "flash_kb": self.flash_kb}
        return limits | ({"latency_ms": self.latency_ms} if self.latency_ms is not None else {})

    def excess(self, ram_kb: float, flash_kb: float, latency_ms: float) -> dict[str, float]:
        """Measured minus limit per constraint (feasible when <= 0)."""
        measured = {"ram_kb": ram_kb, "flash_kb": flash_kb, "latency_ms": latency_ms}
        return {key: measured[key] - limit for key, limit in self.to_dict().items()}


def _check_limit(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValidationFailed(
            f"{name} must be a number > 0 (or left out), got {value!r}", details={"field": name}
        )


def _describe(key: str, value: float, limit: float) -> str:
    name, unit = _UNITS[key]
    return f"{name} {value:.3g} {unit} > {limit:.3g} {unit}"


# ---- one trial ------------------------------------------------------------------------------


def _text_param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class _Trials:
    """Evaluates configurations, each as a child run of ``parent``. A configuration the
    study has completed before (``known``, by :func:`_key`) is not trained again: its child run
    gets the earlier measurements and a ``duplicate_of`` tag."""

    ws: Workspace
    data: _Data
    target: Target
    limits: _Limits
    parent: tracking.Run
    study: str
    seed: int
    known: dict[str, TunePoint]

    def evaluate(self, number: int, config: _Config) -> TunePoint:
        started = time.perf_counter()
        params = config.params()
        earlier = self.known.get(_key(params))
        tags = {"study": self.study, "target": self.target.id}
        child = tracking.create_run(
            self.ws,
            self.parent.experiment_id,
            f"trial-{number}",
            parent_run_id=self.parent.id,
            params={"trial": number, **{k: _text_param(v) for k, v in params.items()}},
            tags=tags if earlier is None else {**tags, "duplicate_of": earlier.trial},
        )
        try:
            if earlier is None:
                point = self._run(number, config, child.id)
            else:
                point = replace(earlier, trial=number, run_id=child.id, repeat_of=earlier.trial)
            point = replace(point, seconds=time.perf_counter() - started)
            values = {
                "float_accuracy": point.float_accuracy,
                "int8_accuracy": point.int8_accuracy,
                "flash_kb": point.flash_kb,
                "ram_kb": point.ram_kb,
                "latency_ms": point.latency_ms,
                "feasible": float(point.feasible),
                "seconds": point.seconds,
            }
            at = now_ms()
            metrics = [
                tracking.MetricPoint(key=k, value=v, timestamp=at) for k, v in values.items()
            ]
            tracking.log_metrics(self.ws, child.id, metrics)
        except BaseException:
            tracking.set_run_status(self.ws, child.id, "failed")
            raise
        tracking.set_run_status(self.ws, child.id, "finished")
        self.known.setdefault(_key(params), point)
        return point

    def _run(self, number: int, config: _Config, run_id: str) -> TunePoint:
        """Train, quantize, score, export and compile; the model and footprint go to the run."""
        data, window = self.data, config.window_samples
        pipeline = config.pipeline(data.axes, data.sample_rate)
        x = pipeline.transform(data.windows[:, :window, :])
        train, test = data.train, ~data.train
        model = Pipeline(
            [
                ("scale", StandardScaler()),
                ("mlp", MLPClassifier(config.hidden, random_state=self.seed, **_MLP)),
            ]
        )
        with warnings.catch_warnings():
            # a small network that stops at max_iter simply scores what it scores
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x[train], data.labels[train])
        qmodel = quantize(model, x[train])
        report = compare(model, qmodel, x[test], data.labels[test])
        export = export_c(qmodel, pipeline, window=(window, len(data.axes)))
        footprint = measure_c(
            export.files,
            self.target,
            operations=export.operations,
            arena_bytes=export.arena_bytes,
            feature_buffer_bytes=export.feature_buffer_bytes,
        )
        files = {
            **{f"model/{k}": v for k, v in registry.save_sklearn(model, x[test][:5]).items()},
            "model/features.json": json.dumps(pipeline.to_dict(), indent=2).encode(),
            "model/model.int8.npz": qmodel.to_bytes(),
            "footprint.json": json.dumps(footprint.to_dict(), indent=2).encode(),
        }
        for path, content in files.items():
            tracking.put_artifact(self.ws, run_id, path, io.BytesIO(content))
        ram_kb, flash_kb = footprint.ram_bytes / 1024, footprint.flash_bytes / 1024
        excess = self.limits.excess(ram_kb, flash_kb, footprint.latency_ms)
        return TunePoint(
            trial=number,
            params=config.params(),
            int8_accuracy=float(report["int8_accuracy"]),
            float_accuracy=float(report["float_accuracy"]),
            flash_kb=flash_kb,
            ram_kb=ram_kb,
            latency_ms=footprint.latency_ms,
            run_id=run_id,
            violations=tuple(key for key, value in excess.items() if value > 0),
        )


# ---- the front ------------------------------------------------------------------------------


def _no_feasible(points: Sequence[TunePoint], limits: _Limits, study: str, run_id: str) -> None:
    bounds = limits.to_dict()
    best = {key: min(getattr(p, key) for p in points) for key in bounds}
    never = [key for key in bounds if best[key] > bounds[key]]
    if never:
        what = "; ".join(f"{_describe(key, best[key], bounds[key])} even at best" for key in never)
        message = f"never met: {what}"
    else:
        message = "each limit was met by some trial, but no trial met all of them at once"
    raise NoFeasiblePoint(
        f"no feasible point in {len(points)} trials of study {study!r}: {message}. Loosen the "
        "limits, pick a larger target or run more trials",
        details={
            "study": study,
            "run_id": run_id,
            "trials": len(points),
            "limits": bounds,
            "never_met": never,
            "best": best,
        },
    )


# ---- the study -----------------------------------------------------------------------------


def _open_study(
    storage: optuna.storages.RDBStorage, name: str, identity: dict[str, Any], seed: int
) -> tuple[optuna.Study, int]:
    """The study (created or loaded) and the seed its split and models use.

    The sampler is seeded with ``seed`` and the number of trials already in the study, so a
    resumed study does not repeat its first random trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=["maximize", "minimize", "minimize"],  # int8 accuracy, latency, RAM
        load_if_exists=True,
    )
    wanted = [optuna.study.StudyDirection.MAXIMIZE] + [optuna.study.StudyDirection.MINIMIZE] * 2
    found = study.user_attrs.get(_ATTR)
    if list(study.directions) != wanted or (found is None and study.get_trials(deepcopy=False)):
        raise ValidationFailed(
            f"study {name!r} exists and was not made by edgeloop tune: use another study name",
            details={"field": "study"},
        )
    count = len(study.get_trials(deepcopy=False))
    mixed = np.random.SeedSequence([seed, count]).generate_state(1)[0]
    study.sampler = optuna.samplers.TPESampler(seed=int(mixed))
    if found is None:
        study.set_user_attr(_ATTR, {**identity, "seed": seed})
        return study, seed
    for key, value in identity.items():
        if found.get(key) != value:
            raise ValidationFailed(
                f"study {name!r} was created with {key}={found.get(key)!r}; this call has "
                f"{key}={value!r}: use the same {key} or another study name",
                details={"field": key},
            )
    return study, int(found["seed"])


def _points(study: optuna.Study) -> list[TunePoint]:
    import optuna

    complete = (optuna.trial.TrialState.COMPLETE,)
    trials = study.get_trials(deepcopy=False, states=complete)
    return [
        TunePoint.from_dict(t.user_attrs[_ATTR])
        for t in sorted(trials, key=lambda t: t.number)
        if _ATTR in t.user_attrs
    ]


def _register(ws: Workspace, name: str, result: TuneResult) -> str:
    chosen = result.chosen
    entry = tracking.read_artifact(ws, chosen.run_id, "footprint.json")
    footprint = Footprint.from_dict(json.loads(ws.artifacts.get_bytes(entry.digest)))
    version = registry.create_model_version(
        ws,
        name,
        run_id=chosen.run_id,
        path="model",
        description=(
            f"tuned for {result.target}: trial {chosen.trial} of study {result.study} on "
            f"{result.dataset}"
        ),
        tags={
            "target": result.target,
            "study": result.study,
            "trial": str(chosen.trial),
            "tuning_run_id": result.run_id,
            "window_samples": str(chosen.params["window_samples"]),
        },
    )
    set_footprints(ws, name, version.version, [footprint])
    tracking.set_tags(ws, result.run_id, {"model_version": version.uri})
    return version.uri


def _check_count(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**32:
        raise ValidationFailed(
            f"{name} must be an integer from {low} to 2**32 - 1, got {value!r}",
            details={"field": name},
        )
    return value


def tune(
    ws: Workspace,
    *,
    dataset: str,
    target: str,
    max_latency_ms: float | None,
    max_ram_kb: float | None,
    max_flash_kb: float | None = None,
    trials: int = 20,
    study: str | None = None,
    experiment: str = "tune",
    register: str | None = None,
    seed: int = 0,
    sample_rate: float | None = None,
    on_trial: OnTunedTrial | None = None,
) -> TuneResult:
    """Search feature blocks and int8 MLPs for ``target`` under the limits; see the module
    docstring for the search space, objectives and constraints.

    ``trials`` is the total number of completed trials the study should hold: a second call
    with the same ``study`` (default ``tune:<dataset name>@<version>:<target>``) runs only
    the missing ones. ``seed`` seeds this call's sampler; the group split and the networks use
    the seed the study was created with (give concurrent workers different seeds).
    ``sample_rate`` defaults to the dataset's recorded rate (else 1000 Hz). With ``register``
    the chosen trial's model (with ``features.json`` and the int8 model) becomes the next
    version of that model, with its footprint on the target stored on the version.

    Raises :class:`NoFeasiblePoint` (422) when no trial of the study meets every limit,
    :class:`ValidationFailed` for bad arguments or a study made for something else, and
    :class:`~edgeloop.errors.BackendUnavailable` without ``arm-none-eabi-gcc``.
    """
    trials, seed = _check_count("trials", trials, 1), _check_count("seed", seed, 0)
    board = get_target(target)
    if board.deploy != "c":
        raise ValidationFailed(
            f"target {board.id!r} deploys ONNX; tune builds C for microcontroller targets",
            details={"field": "target"},
        )
    limits = _Limits.of(board, max_ram_kb, max_flash_kb, max_latency_ms)
    version = datasets.get_version(ws, dataset)
    name = study or f"tune:{version.name}@{version.version}:{board.id}"
    data = _load(ws, version.uri, sample_rate, seed)
    space = _Space.for_window(int(data.windows.shape[1]))
    identity = {
        "dataset": data.uri,
        "target": board.id,
        "limits": limits.to_dict(),
        "space": space.to_dict(),
        "sample_rate": data.sample_rate,
        "axes": list(data.axes),
    }
    storage = open_storage(ws.settings.database_url)
    try:
        optuna_study, study_seed = _open_study(storage, name, identity, seed)
        if study_seed != seed:
            data = _load(ws, data.uri, data.sample_rate, study_seed)
        parent = tracking.create_run(
            ws,
            experiment,
            f"tune-{board.id}",
            params={
                "dataset": data.uri,
                "target": board.id,
                "study": name,
                "trials": trials,
                "seed": seed,
                **{f"max_{k}": v for k, v in limits.to_dict().items()},
            },
            tags={"study": name},
            lineage=tracking.capture_lineage(),
            inputs=[tracking.RunInput(ref=data.uri, digest=data.digest)],
        )
        try:
            known = {_key(p.params): p for p in reversed(_points(optuna_study))}
            runner = _Trials(ws, data, board, limits, parent, name, study_seed, known)
            ran = _optimize(optuna_study, trials, runner, space, on_trial)
            result = _conclude(ws, optuna_study, parent.id, board, data.uri, limits, ran)
            if register is not None:
                result = replace(result, model_version=_register(ws, register, result))
        except BaseException:
            tracking.set_run_status(ws, parent.id, "failed")
            raise
        tracking.set_run_status(ws, parent.id, "finished")
        return result
    finally:
        storage.remove_session()
        storage.engine.dispose()


def _optimize(
    study: optuna.Study,
    trials: int,
    runner: _Trials,
    space: _Space,
    on_trial: OnTunedTrial | None,
) -> int:
    """Run trials until the study holds ``trials`` completed ones; how many ran here."""
    import optuna

    ran = 0

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        nonlocal ran
        point = runner.evaluate(trial.number, space.suggest(trial))
        trial.set_user_attr(_ATTR, point.to_dict())
        excess = runner.limits.excess(point.ram_kb, point.flash_kb, point.latency_ms)
        for key, value in excess.items():
            trial.set_constraint(key, value)
        ran += 1
        if on_trial is not None:
            on_trial(point)
        return point.int8_accuracy, point.latency_ms, point.ram_kb

    missing = trials - len(_points(study))
    if missing > 0:
        complete = (optuna.trial.TrialState.COMPLETE,)
        stop = optuna.study.MaxTrialsCallback(trials, states=complete)  # other workers' too
        study.optimize(objective, n_trials=missing, callbacks=[stop])
    return ran


def _conclude(
    ws: Workspace,
    study: optuna.Study,
    run_id: str,
    board: Target,
    dataset: str,
    limits: _Limits,
    ran: int,
) -> TuneResult:
    """The front and the chosen point of every completed trial, logged on the tuning run."""
    points = _points(study)
    front = pareto_front(points)
    chosen = _choose(front) if front else None
    title = f"Pareto front: {dataset} on {board.id}"
    plot = pareto_svg(points, front, chosen, limits.to_dict(), title)
    summary = {
        "study": study.study_name,
        "limits": limits.to_dict(),
        "front": [p.trial for p in front],
        "chosen": chosen.trial if chosen else None,
        "trials": [p.to_dict() for p in points],
    }
    for path, content in (
        ("plots/pareto.svg", plot.encode()),
        ("pareto.json", json.dumps(summary, indent=2).encode()),
    ):
        tracking.put_artifact(ws, run_id, path, io.BytesIO(content))
    if chosen is None:
        _no_feasible(points, limits, study.study_name, run_id)
    assert chosen is not None
    result = TuneResult(
        study=study.study_name,
        dataset=dataset,
        target=board.id,
        limits=limits.to_dict(),
        run_id=run_id,
        trials=points,
        front=front,
        chosen=chosen,
        ran=ran,
    )
    _log_chosen(ws, result)
    return result


def _log_chosen(ws: Workspace, result: TuneResult) -> None:
    chosen, at = result.chosen, now_ms()
    values = {
        "chosen.int8_accuracy": chosen.int8_accuracy,
        "chosen.float_accuracy": chosen.float_accuracy,
        "chosen.flash_kb": chosen.flash_kb,
        "chosen.ram_kb": chosen.ram_kb,
        "chosen.latency_ms": chosen.latency_ms,
        "trials": float(len(result.trials)),
        "front_size": float(len(result.front)),
    }
    points = [tracking.MetricPoint(key=k, value=v, timestamp=at) for k, v in values.items()]
    tracking.log_metrics(ws, result.run_id, points)
    tracking.set_tags(
        ws, result.run_id, {"chosen_trial": chosen.trial, "chosen_run_id": chosen.run_id}
    )
