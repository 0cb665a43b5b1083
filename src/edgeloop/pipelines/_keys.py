"""Cache keys: what makes two executions of a step the same work.

A step's key is the SHA-256 of its function's module source and name, its resolved params,
its inputs' digests (dataset versions, upstream outputs, literals) and the environment digest.
Only the standard library and the spec are imported here, so the CLI can find a fully cached
run without loading the rest of edgeloop.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeloop.errors import ValidationFailed
from edgeloop.pipelines._spec import PipelineSpec, StepSpec, resolve_function

__all__ = ["PRODUCED", "code_digest", "digest", "input_digests", "step_key"]

# Step outputs so named are recorded on the pipeline run's lineage as what it produced.
PRODUCED = ("run_id", "model_version", "dataset_version")


def digest(data: Any) -> str:
    """SHA-256 of ``data`` as canonical JSON."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def code_digest(run: str) -> str:
    """Digest of a step function's module source and name.

    The module's file is read, not imported, so a fully cached run never pays for the step
    code's own imports; a module without a readable source file falls back to importing it.
    """
    module_name, sep, attr = run.partition(":")
    if not sep or not module_name or not attr:
        raise ValidationFailed(f"step function {run!r} must be written module:function")
    source = _module_source(module_name)
    head = re.escape(attr.split(".")[0])
    if source is None or not re.search(
        rf"^\s*(async\s+)?def {head}\b|^\s*class {head}\b|^{head}\s*=", source, re.M
    ):
        func = resolve_function(run)  # raises NotFound with a clear message if it is missing
        module = sys.modules.get(func.__module__)
        try:
            source = inspect.getsource(module) if module is not None else inspect.getsource(func)
        except (OSError, TypeError):
            source = getattr(func, "__qualname__", repr(func))
    return hashlib.sha256(f"{run}\n{source}".encode()).hexdigest()


def _module_source(module_name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        return Path(spec.origin).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def input_digests(
    step: StepSpec,
    outputs: Mapping[str, Mapping[str, str]],
    datasets: Mapping[str, tuple[str, str]],
) -> dict[str, Any]:
    """What each input of ``step`` is, by content: ``outputs`` holds the upstream steps'
    output digests, ``datasets`` maps a dataset reference to its (uri, digest)."""
    resolved: dict[str, Any] = {}
    for key, value in step.inputs.items():
        if isinstance(value, str) and value.startswith("steps."):
            _, up, output = value.split(".", 2)
            resolved[key] = {"step": up, "output": output, "digest": outputs[up][output]}
        elif isinstance(value, str) and value in datasets:
            uri, content = datasets[value]
            resolved[key] = {"dataset": uri, "digest": content}
        else:
            resolved[key] = {"literal": value}
    return resolved


def step_key(
    spec: PipelineSpec, step: StepSpec, code: str, inputs: Mapping[str, Any], env: str
) -> str:
    return digest({"code": code, "params": spec.step_params(step), "inputs": inputs, "env": env})
