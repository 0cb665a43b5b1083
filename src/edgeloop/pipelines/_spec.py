"""Pipeline definitions: a DAG of steps, declared in ``edgeloop.yaml`` or in Python.

```yaml
pipelines:
  maintenance:
    params: {window_ms: 1000}
    steps:
      ingest:
        run: maintenance.steps:ingest          # module:function, importable from the repo
        inputs: {recordings: "datasets:/vibration@latest"}
        params: {window_ms: "${params.window_ms}"}
        outputs: [windows]
      features:
        run: maintenance.steps:features
        inputs: {windows: "steps.ingest.windows"}
        outputs: [X, y]
```

An input is a dataset reference (``datasets:/name@4`` / ``@latest``), another step's output
(``steps.STEP.OUTPUT``) or a literal. A step param may name a pipeline param
(``${params.NAME}``), which ``edgeloop run --param NAME=VALUE`` overrides.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from edgeloop.errors import NotFound, ValidationFailed

__all__ = [
    "PipelineSpec",
    "StepSpec",
    "Triggers",
    "load_pipelines",
    "open_pipeline_file",
    "parse_params",
    "pick_pipeline",
    "resolve_function",
    "step",
]

F = TypeVar("F", bound=Callable[..., Any])
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$")
_STEP_REF = re.compile(r"^steps\.(?P<step>[A-Za-z_][A-Za-z0-9_\-]*)\.(?P<output>[A-Za-z_][\w\-]*)$")
_PARAM_REF = re.compile(r"^\$\{params\.(?P<name>[A-Za-z_][\w\-]*)\}$")


@dataclass(frozen=True)
class StepSpec:
    """One step: the function it runs (``module:function``), its inputs, params and outputs."""

    name: str
    run: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ("result",)

    def upstream(self) -> list[str]:
        return sorted({m["step"] for v in self.inputs.values() if (m := _step_ref(v))})


def _step_ref(value: Any) -> re.Match[str] | None:
    return _STEP_REF.match(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class Triggers:
    """What starts a pipeline besides a manual run: a cron ``schedule`` (UTC), a new version of
    a dataset it reads (``data_change``), or new step code (``code_change``). Alerts start it
    through ``POST /api/v1/triggers/alert``."""

    schedule: str | None = None
    data_change: bool = False
    code_change: bool = False


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    steps: tuple[StepSpec, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    triggers: Triggers = field(default_factory=Triggers)

    def __post_init__(self) -> None:
        _check_name("pipeline", self.name)
        names = [s.name for s in self.steps]
        if not names:
            raise ValidationFailed(f"pipeline {self.name!r} has no steps")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValidationFailed(
                f"pipeline {self.name!r} has duplicate steps: {', '.join(dupes)}"
            )
        by_name = {s.name: s for s in self.steps}
        for s in self.steps:
            _check_name("step", s.name)
            for key, value in s.inputs.items():
                ref = _step_ref(value)
                if ref is None:
                    continue
                source = by_name.get(ref["step"])
                if source is None:
                    raise ValidationFailed(
                        f"step {s.name!r} input {key!r} names step {ref['step']!r}, which is not "
                        f"in pipeline {self.name!r} (steps: {', '.join(names)})"
                    )
                if ref["output"] not in source.outputs:
                    raise ValidationFailed(
                        f"step {s.name!r} input {key!r} wants output {ref['output']!r} of "
                        f"{source.name!r}, which has outputs {', '.join(source.outputs)}"
                    )
            for value in s.params.values():
                match = _PARAM_REF.match(value) if isinstance(value, str) else None
                if match and match["name"] not in self.params:
                    raise ValidationFailed(
                        f"step {s.name!r} uses ${{params.{match['name']}}}, which pipeline "
                        f"{self.name!r} does not declare"
                    )
        self.order()  # raises on cycles
        if self.triggers.schedule is not None:
            _check_cron(self.name, self.triggers.schedule)

    def datasets(self) -> list[str]:
        """The dataset references the steps read."""
        refs = {
            v
            for s in self.steps
            for v in s.inputs.values()
            if isinstance(v, str) and v.startswith("datasets:/")
        }
        return sorted(refs)

    def order(self) -> list[StepSpec]:
        """Steps in a topological order (ties broken by declaration order)."""
        by_name = {s.name: s for s in self.steps}
        done: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join((*path[path.index(name) :], name))
                raise ValidationFailed(f"pipeline {self.name!r} has a cycle: {cycle}")
            state[name] = 1
            for up in by_name[name].upstream():
                visit(up, (*path, name))
            state[name] = 2
            done.append(name)

        for s in self.steps:
            visit(s.name, ())
        return [by_name[n] for n in done]

    def with_params(self, overrides: Mapping[str, Any]) -> PipelineSpec:
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            raise ValidationFailed(
                f"pipeline {self.name!r} has no param(s) {', '.join(unknown)}; it has: "
                f"{', '.join(sorted(self.params)) or 'none'}"
            )
        return replace(self, params={**self.params, **overrides})

    def step_params(self, spec: StepSpec) -> dict[str, Any]:
        """The step's params with ``${params.NAME}`` replaced by the pipeline's values."""
        resolved: dict[str, Any] = {}
        for key, value in spec.params.items():
            match = _PARAM_REF.match(value) if isinstance(value, str) else None
            resolved[key] = self.params[match["name"]] if match else value
        return resolved


def _check_cron(pipeline: str, expression: str) -> None:
    from croniter import croniter

    if not isinstance(expression, str) or not croniter.is_valid(expression):
        raise ValidationFailed(
            f"pipeline {pipeline!r} schedule {expression!r} is not a cron expression; "
            "write five fields, e.g. '0 3 * * *' for 03:00 UTC every day"
        )


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationFailed(
            f"{kind} name {name!r} is not allowed: use letters, digits, '_' or '-', starting "
            "with a letter or '_'"
        )


def step(
    outputs: Sequence[str] = ("result",),
) -> Callable[[F], F]:
    """Mark a function as a pipeline step and declare its outputs.

    >>> @edgeloop.step(outputs=["X", "y"])  # doctest: +SKIP
    ... def features(windows, fft_length=256):
    ...     return {"X": ..., "y": ...}

    A step receives its inputs and params as keyword arguments and returns a dict with one
    entry per output (or the value itself when it has a single output).
    """

    def mark(func: F) -> F:
        func.__edgeloop_outputs__ = tuple(outputs)  # type: ignore[attr-defined]
        return func

    return mark


def resolve_function(ref: str) -> Callable[..., Any]:
    """Import ``module:function`` (nested attributes allowed: ``module:Class.method``)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValidationFailed(f"step function {ref!r} must be written module:function")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotFound(f"cannot import {module_name!r} for step function {ref!r}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise NotFound(f"{module_name!r} has no {attr!r} (step function {ref!r})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValidationFailed(f"step function {ref!r} is not callable")
    return obj  # type: ignore[no-any-return]


def _step_from_yaml(pipeline: str, name: str, body: Any) -> StepSpec:
    if not isinstance(body, dict):
        raise ValidationFailed(f"pipeline {pipeline!r} step {name!r} must be a mapping")
    allowed = {"run", "inputs", "params", "outputs"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationFailed(
            f"pipeline {pipeline!r} step {name!r}: unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    if not isinstance(body.get("run"), str):
        raise ValidationFailed(f"pipeline {pipeline!r} step {name!r} needs run: module:function")
    outputs = body.get("outputs", ["result"])
    if isinstance(outputs, str):
        outputs = [outputs]
    for key in ("inputs", "params"):
        if not isinstance(body.get(key, {}), dict):
            raise ValidationFailed(f"pipeline {pipeline!r} step {name!r}: {key} must be a mapping")
    return StepSpec(
        name=str(name),
        run=body["run"],
        inputs=dict(body.get("inputs", {})),
        params=dict(body.get("params", {})),
        outputs=tuple(str(o) for o in outputs),
    )


def _triggers(pipeline: str, body: Mapping[str, Any]) -> Triggers:
    raw = body.get("triggers", {}) or {}
    allowed = {"schedule", "data_change", "code_change"}
    if not isinstance(raw, dict) or set(raw) - allowed:
        raise ValidationFailed(
            f"pipeline {pipeline!r}: triggers must be a mapping of {', '.join(sorted(allowed))}"
        )
    return Triggers(
        schedule=raw.get("schedule"),
        data_change=bool(raw.get("data_change", False)),
        code_change=bool(raw.get("code_change", False)),
    )


def load_pipelines(path: str | Path = "edgeloop.yaml") -> dict[str, PipelineSpec]:
    """The pipelines declared in ``path``."""
    source = Path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotFound(f"{source} does not exist: declare pipelines there") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValidationFailed(f"cannot read {source}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("pipelines"), dict):
        raise ValidationFailed(f"{source} must have a 'pipelines' mapping")
    result: dict[str, PipelineSpec] = {}
    for name, body in data["pipelines"].items():
        extra = sorted(set(body or {}) - {"steps", "params", "triggers"})
        if extra:
            raise ValidationFailed(
                f"pipeline {name!r} in {source}: unknown key(s) {', '.join(extra)}; "
                "allowed: steps, params, triggers"
            )
        if not isinstance(body, dict) or not isinstance(body.get("steps"), dict):
            raise ValidationFailed(f"pipeline {name!r} in {source} needs a 'steps' mapping")
        steps = tuple(_step_from_yaml(name, k, v) for k, v in body["steps"].items())
        params = body.get("params", {})
        if not isinstance(params, dict):
            raise ValidationFailed(f"pipeline {name!r}: params must be a mapping")
        result[str(name)] = PipelineSpec(
            name=str(name), steps=steps, params=params, triggers=_triggers(name, body)
        )
    return result


def open_pipeline_file(path: str | Path) -> dict[str, PipelineSpec]:
    """The pipelines in ``path``, with its folder importable (step modules live there)."""
    specs = load_pipelines(path)
    root = str(Path(path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return specs


def pick_pipeline(specs: Mapping[str, PipelineSpec], name: str, path: str | Path) -> PipelineSpec:
    """The pipeline called ``name``; with no name, the only one ``path`` declares."""
    if not name:
        if len(specs) != 1:
            raise ValidationFailed(f"{path} declares {', '.join(sorted(specs))}: name one")
        name = next(iter(specs))
    if name not in specs:
        raise ValidationFailed(f"{path} has no pipeline {name!r}; it has {', '.join(specs)}")
    return specs[name]


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` arguments as params; values are read as YAML scalars (0.5 is a float,
    32 an int, anything else text)."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationFailed(f"--param {item!r} must be written NAME=VALUE")
        params[key] = yaml.safe_load(value)
    return params
