"""Run a pipeline: topological, parallel where steps are independent, cached by content hash.

A step's cache key is the SHA-256 of its function's module source and name, its resolved
params, its inputs' digests (dataset versions, upstream outputs, literals) and the environment
digest. A step whose key matches an earlier succeeded step is not run: its recorded outputs are
reused, and nothing is loaded unless a downstream step has to run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from edgeloop.datasets import check_loadable, get_version, load_table
from edgeloop.errors import Conflict, ValidationFailed
from edgeloop.pages import check_limit
from edgeloop.pipelines._context import StepContext
from edgeloop.pipelines._entities import PipelineRunInfo, StepRunInfo
from edgeloop.pipelines._executor import (
    Executor,
    LocalProcessExecutor,
    StepOutcome,
    StepTask,
    load_value,
)
from edgeloop.pipelines._keys import PRODUCED, code_digest, digest, input_digests, step_key
from edgeloop.pipelines._spec import PipelineSpec, StepSpec
from edgeloop.store import PipelineRun, PipelineStore, StepRun
from edgeloop.tracking import environment_digest, git_state
from edgeloop.workspace import Workspace, now_ms

__all__ = ["get_pipeline_run", "list_pipeline_runs", "run_pipeline"]

Event = Callable[[str, str], None]


def _portable_settings(ws: Workspace) -> dict[str, Any]:
    """What a worker anywhere needs to open the same workspace."""
    return {
        "home": str(ws.settings.home.resolve()),
        "db_url": ws.settings.database_url,
        "artifacts": ws.settings.artifacts_uri,
    }


def _info(run: PipelineRun, steps: Sequence[StepRun]) -> PipelineRunInfo:
    return PipelineRunInfo(
        id=run.id,
        pipeline=run.pipeline,
        status=run.status,
        params=dict(run.params),
        reasons=dict(run.reasons),
        lineage=dict(run.lineage),
        error=run.error,
        resumed_from=run.resumed_from,
        started_at=run.started_at,
        ended_at=run.ended_at,
        created_by=run.created_by,
        steps=[
            StepRunInfo(
                name=s.name,
                status=s.status,
                cache_key=s.cache_key,
                inputs=dict(s.inputs),
                outputs=dict(s.outputs),
                logs_digest=s.logs_digest,
                error=s.error,
                started_at=s.started_at,
                ended_at=s.ended_at,
            )
            for s in steps
        ],
    )


def get_pipeline_run(ws: Workspace, run_id: str) -> PipelineRunInfo:
    with ws.db.read() as s:
        store = PipelineStore(s)
        return _info(store.run(run_id), store.steps(run_id))


def list_pipeline_runs(
    ws: Workspace, pipeline: str | None = None, limit: int = 50
) -> list[PipelineRunInfo]:
    check_limit(limit, "limit")
    with ws.db.read() as s:
        store = PipelineStore(s)
        return [_info(r, store.steps(r.id)) for r in store.runs(pipeline, 0, limit)]


class _Run:
    """The state of one pipeline run while it executes."""

    def __init__(self, ws: Workspace, spec: PipelineSpec, run_id: str, on_event: Event) -> None:
        self.ws, self.spec, self.run_id, self.emit = ws, spec, run_id, on_event
        self.outputs: dict[str, dict[str, str]] = {}  # step -> output -> digest
        self.status: dict[str, str] = {s.name: "pending" for s in spec.steps}

    def update_step(self, name: str, **values: Any) -> None:
        with self.ws.db.write() as s:
            row = PipelineStore(s).step(self.run_id, name)
            for key, value in values.items():
                setattr(row, key, value)
        if "status" in values:
            self.status[name] = values["status"]
            self.emit(name, values["status"])

    def materialise(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, ref in inputs.items():
            if "step" in ref:
                values[key] = load_value(self.ws.artifacts.get_bytes(ref["digest"]))
            elif "dataset" in ref:
                values[key] = load_table(self.ws, ref["dataset"])[1]
            else:
                values[key] = ref["literal"]
        return values


def _produced(ws: Workspace, state: _Run) -> dict[str, list[Any]]:
    """Runs, model versions and dataset versions the steps returned (outputs so named)."""
    found: dict[str, list[Any]] = {}
    for outputs in state.outputs.values():
        for name in PRODUCED:
            if name in outputs:
                found.setdefault(name, []).append(load_value(ws.artifacts.get_bytes(outputs[name])))
    return found


def run_pipeline(
    ws: Workspace,
    spec: PipelineSpec,
    *,
    params: Mapping[str, Any] | None = None,
    force: Sequence[str] = (),
    resume: str | None = None,
    reasons: Mapping[str, Any] | None = None,
    executor: Executor | None = None,
    on_event: Event | None = None,
) -> PipelineRunInfo:
    """Run ``spec`` and record it; returns the finished run (``succeeded`` or ``failed``)."""
    spec = spec.with_params(params or {})
    unknown = sorted(set(force) - {s.name for s in spec.steps})
    if unknown:
        raise ValidationFailed(f"--force names unknown step(s): {', '.join(unknown)}")
    order = spec.order()
    prior: dict[str, dict[str, str]] = {}
    if resume:
        previous = get_pipeline_run(ws, resume)
        if previous.pipeline != spec.name:
            raise ValidationFailed(f"run {resume} is of pipeline {previous.pipeline!r}")
        if previous.status == "succeeded":
            raise Conflict(f"run {resume} succeeded: there is nothing to resume")
        prior = {s.name: s.outputs for s in previous.steps if s.status in ("succeeded", "cached")}
    datasets: dict[str, tuple[str, str]] = {}
    for step in order:
        for value in step.inputs.values():
            if isinstance(value, str) and value.startswith("datasets:/") and value not in datasets:
                version = get_version(ws, value)
                check_loadable(version)
                datasets[value] = (version.uri, version.digest)
    codes = {s.name: code_digest(s.run) for s in order}
    env = environment_digest()
    run_id = uuid.uuid4().hex
    lineage = {
        "code_digest": digest(codes),
        "environment_digest": env,
        "git": git_state(),
        "datasets": dict(datasets.values()),
    }
    with ws.db.write() as s:
        PipelineStore(s).add_run(
            PipelineRun(
                id=run_id,
                pipeline=spec.name,
                status="running",
                params=dict(spec.params),
                reasons=dict(reasons or {"manual": {"by": ws.principal.name}}),
                lineage=lineage,
                error="",
                resumed_from=resume,
                started_at=now_ms(),
                ended_at=None,
                created_by=ws.principal.name,
            ),
            [StepRun(name=st.name, status="pending", inputs={}, outputs={}) for st in order],
        )
    state = _Run(ws, spec, run_id, on_event or (lambda _step, _status: None))
    pool = executor or LocalProcessExecutor()
    running: dict[Future[StepOutcome], tuple[StepSpec, str, int]] = {}
    failed: list[str] = []
    try:
        while True:
            for step in order:
                if state.status[step.name] != "pending":
                    continue
                ups = step.upstream()
                if any(state.status[u] in ("failed", "skipped") for u in ups):
                    state.update_step(step.name, status="skipped", error="an upstream step failed")
                    continue
                if not all(state.status[u] in ("succeeded", "cached") for u in ups):
                    continue
                inputs = input_digests(step, state.outputs, datasets)
                key = step_key(spec, step, codes[step.name], inputs, env)
                reused = prior.get(step.name) if step.name not in force else None
                if reused is None and step.name not in force:
                    with ws.db.read() as s:
                        hit = PipelineStore(s).cached(key)
                    reused = dict(hit.outputs) if hit is not None else None
                if reused is not None:
                    state.outputs[step.name] = reused
                    at = now_ms()
                    state.update_step(
                        step.name,
                        status="cached",
                        cache_key=key,
                        inputs=inputs,
                        outputs=reused,
                        started_at=at,
                        ended_at=at,
                    )
                    continue
                task = StepTask(
                    step.name,
                    step.run,
                    {**state.materialise(inputs), **spec.step_params(step)},
                    step.outputs,
                    StepContext(
                        pipeline=spec.name,
                        pipeline_run_id=run_id,
                        step=step.name,
                        settings=_portable_settings(ws),
                        principal=ws.principal.name,
                        datasets=dict(datasets.values()),
                    ),
                )
                started = now_ms()
                state.update_step(
                    step.name, status="running", cache_key=key, inputs=inputs, started_at=started
                )
                running[pool.submit(task)] = (step, key, started)
            if not running:
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                step, key, started = running.pop(future)
                outcome = future.result()
                logs = ws.artifacts.put_bytes(outcome.logs.encode()).digest
                if outcome.error:
                    failed.append(step.name)
                    state.update_step(
                        step.name,
                        status="failed",
                        error=outcome.error,
                        logs_digest=logs,
                        ended_at=now_ms(),
                    )
                    continue
                digests = {k: ws.artifacts.put_bytes(v).digest for k, v in outcome.outputs.items()}
                state.outputs[step.name] = digests
                state.update_step(
                    step.name,
                    status="succeeded",
                    outputs=digests,
                    logs_digest=logs,
                    ended_at=now_ms(),
                )
    finally:
        if executor is None:
            pool.shutdown()
    produced = _produced(ws, state)
    with ws.db.write() as s:
        store = PipelineStore(s)
        row = store.run(run_id, for_update=True)
        if produced:
            row.lineage = {**row.lineage, "produced": produced}
        row.status = "failed" if failed else "succeeded"
        row.error = f"step(s) failed: {', '.join(failed)}" if failed else ""
        row.ended_at = now_ms()
    return get_pipeline_run(ws, run_id)
