"""Stores for experiments and runs: the only place their SQL lives."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, and_, delete, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from edgeloop.errors import Conflict, NotFound
from edgeloop.store._models import (
    Experiment,
    LatestMetric,
    Metric,
    Param,
    Run,
    RunArtifact,
    RunInput,
    Tag,
)
from edgeloop.store._query import apply_filter, compile_order_by

__all__ = ["ExperimentStore", "MetricRow", "RunDetails", "RunStore"]

_METRICS = cast(Table, Metric.__table__)
_RUN_COLUMNS = [
    Run.id,
    Run.experiment_id,
    Run.name,
    Run.status,
    Run.start_time,
    Run.end_time,
    Run.parent_run_id,
    Run.created_by,
    Run.lineage,
]


@dataclass(frozen=True)
class MetricRow:
    key: str
    value: float
    step: int
    timestamp: int


@dataclass
class RunDetails:
    """A run's columns with its params, tags, latest metric values and inputs."""

    run: dict[str, Any]
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    inputs: list[dict[str, str]] = field(default_factory=list)


def _upsert(session: Session, table: Any) -> Any:
    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(table)


class ExperimentStore:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, **values: Any) -> Experiment:
        exp = Experiment(**values)
        try:
            with self.s.begin_nested():
                self.s.add(exp)
                self.s.flush()
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                f"experiment {values['name']!r} already exists", details={"name": values["name"]}
            ) from exc
        return exp

    def by_id(self, experiment_id: int) -> Experiment | None:
        return self.s.get(Experiment, experiment_id)

    def by_name(self, name: str) -> Experiment | None:
        return self.s.scalar(select(Experiment).where(Experiment.name == name))

    def page(self, offset: int, limit: int) -> list[Experiment]:
        stmt = select(Experiment).order_by(Experiment.id).offset(offset).limit(limit)
        return list(self.s.scalars(stmt))


class RunStore:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, run: Run) -> Run:
        self.s.add(run)
        self.s.flush()
        return run

    def get(self, run_id: str, *, for_update: bool = False) -> Run:
        stmt = select(Run).where(Run.id == run_id)
        if for_update:
            stmt = stmt.with_for_update()
        run = self.s.scalar(stmt)
        if run is None:
            raise NotFound(f"run {run_id!r} does not exist", details={"run_id": run_id})
        return run

    # params, tags, inputs -------------------------------------------------------------

    def params(self, run_id: str, keys: Iterable[str] | None = None) -> dict[str, str]:
        stmt = select(Param.key, Param.value).where(Param.run_id == run_id)
        if keys is not None:
            stmt = stmt.where(Param.key.in_(list(keys)))
        return dict(self.s.execute(stmt).all())

    def add_params(self, run_id: str, params: Mapping[str, str]) -> None:
        if params:
            self.s.execute(
                _upsert(self.s, Param).on_conflict_do_nothing(),
                [{"run_id": run_id, "key": k, "value": v} for k, v in params.items()],
            )

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        if tags:
            stmt = _upsert(self.s, Tag)
            stmt = stmt.on_conflict_do_update(
                index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}
            )
            self.s.execute(
                stmt, [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]
            )

    def delete_tag(self, run_id: str, key: str) -> bool:
        result = self.s.execute(delete(Tag).where(Tag.run_id == run_id, Tag.key == key))
        return bool(getattr(result, "rowcount", 0))

    def add_inputs(self, run_id: str, inputs: Sequence[Mapping[str, str]]) -> None:
        if inputs:
            self.s.execute(
                _upsert(self.s, RunInput).on_conflict_do_nothing(),
                [{"run_id": run_id, **item} for item in inputs],
            )

    # metrics -----------------------------------------------------------------------

    def add_metrics(self, run_id: str, points: Sequence[MetricRow]) -> None:
        """Append points and move each key's latest value (highest step, then timestamp)."""
        if not points:
            return
        self.s.connection().execute(
            _METRICS.insert(),
            [
                {
                    "run_id": run_id,
                    "key": p.key,
                    "value": p.value,
                    "step": p.step,
                    "timestamp": p.timestamp,
                }
                for p in points
            ],
        )
        newest: dict[str, MetricRow] = {}
        for p in points:
            cur = newest.get(p.key)
            if cur is None or (p.step, p.timestamp) >= (cur.step, cur.timestamp):
                newest[p.key] = p
        stmt = _upsert(self.s, LatestMetric)
        ex = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={"value": ex.value, "step": ex.step, "timestamp": ex.timestamp},
            where=(ex.step > LatestMetric.step)
            | and_(ex.step == LatestMetric.step, ex.timestamp >= LatestMetric.timestamp),
        )
        self.s.execute(
            stmt,
            [
                {
                    "run_id": run_id,
                    "key": p.key,
                    "value": p.value,
                    "step": p.step,
                    "timestamp": p.timestamp,
                }
                for p in newest.values()
            ],
        )

    def metric_history(self, run_id: str, key: str) -> list[MetricRow]:
        stmt = (
            select(Metric.key, Metric.value, Metric.step, Metric.timestamp)
            .where(Metric.run_id == run_id, Metric.key == key)
            .order_by(Metric.step, Metric.timestamp, Metric.id)
        )
        return [MetricRow(*row) for row in self.s.execute(stmt)]

    # artifacts ---------------------------------------------------------------------

    def put_artifact(self, run_id: str, path: str, digest: str, size: int) -> None:
        stmt = _upsert(self.s, RunArtifact)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "path"],
            set_={"digest": stmt.excluded.digest, "size": stmt.excluded.size},
        )
        self.s.execute(stmt, {"run_id": run_id, "path": path, "digest": digest, "size": size})

    def artifacts(self, run_id: str, prefix: str = "") -> list[RunArtifact]:
        stmt = select(RunArtifact).where(RunArtifact.run_id == run_id)
        if prefix:
            base = prefix.rstrip("/")
            stmt = stmt.where(
                (RunArtifact.path == base)
                | RunArtifact.path.startswith(base + "/", autoescape=True)
            )
        return list(self.s.scalars(stmt.order_by(RunArtifact.path)))

    # search ------------------------------------------------------------------------

    def search(
        self,
        experiment_ids: Sequence[int],
        node: Any,
        order_by: Sequence[Any],
        offset: int,
        limit: int,
    ) -> list[str]:
        """Run ids matching the parsed filter, in order; ``limit`` rows from ``offset``."""
        stmt = select(Run.id).where(Run.experiment_id.in_(list(experiment_ids)))
        if node is not None:
            stmt = apply_filter(stmt, node)
        stmt = compile_order_by(stmt, order_by).offset(offset).limit(limit)
        return list(self.s.scalars(stmt))

    def details(self, run_ids: Sequence[str]) -> list[RunDetails]:
        """Runs with params, tags, latest metrics and inputs, in the order of ``run_ids``.

        Plain column selects, not ORM objects: a search returns thousands of rows."""
        if not run_ids:
            return []
        ids = list(run_ids)
        conn = self.s.connection()
        by_id = {
            row["id"]: RunDetails(dict(row))
            for row in conn.execute(select(*_RUN_COLUMNS).where(Run.id.in_(ids))).mappings()
        }
        for run_id, k, v in conn.execute(
            select(Param.run_id, Param.key, Param.value).where(Param.run_id.in_(ids))
        ):
            by_id[run_id].params[k] = v
        for run_id, k, v in conn.execute(
            select(Tag.run_id, Tag.key, Tag.value).where(Tag.run_id.in_(ids))
        ):
            by_id[run_id].tags[k] = v
        for run_id, mkey, mvalue in conn.execute(
            select(LatestMetric.run_id, LatestMetric.key, LatestMetric.value).where(
                LatestMetric.run_id.in_(ids)
            )
        ):
            by_id[run_id].metrics[mkey] = mvalue
        for run_id, ref, kind, digest in conn.execute(
            select(RunInput.run_id, RunInput.ref, RunInput.kind, RunInput.digest).where(
                RunInput.run_id.in_(ids)
            )
        ):
            by_id[run_id].inputs.append({"ref": ref, "kind": kind, "digest": digest})
        return [by_id[i] for i in ids if i in by_id]
