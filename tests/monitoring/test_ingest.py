"""Storing monitoring windows from any source and merging them per window bucket: idempotent
ingest, validation, the version's layout, filters by source and tag, and the vectorised
merge against pairwise merging."""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest

from edgeloop import registry, tracking
from edgeloop.errors import NotFound, ValidationFailed
from edgeloop.monitoring import (
    Reference,
    SketchWindowIn,
    WindowSketch,
    build_reference,
    ingest_window,
    merged_windows,
    sketch_batch,
)
from edgeloop.monitoring._window_pack import layout_of, merge_packed, pack_window
from edgeloop.monitoring.reference import REFERENCE_PATH
from edgeloop.workspace import Workspace

H = 3_600_000
T0 = 1_764_000_000_000 // H * H
RNG = np.random.default_rng(1)
NAMES = ["rms", "peak", "crest"]
REF = build_reference(
    RNG.normal(size=(600, 3)), NAMES, labels=["ok", "worn"], proba=RNG.dirichlet([3, 1], 600)
)


def register(ws: Workspace, name: str = "pump", reference: Reference | None = REF) -> int:
    run = tracking.create_run(ws, "monitoring-tests")
    tracking.put_artifact(ws, run.id, "model/model.bin", io.BytesIO(b"weights"))
    version = registry.create_model_version(ws, name, run_id=run.id).version
    if reference is not None:
        registry.attach_files(ws, name, version, {REFERENCE_PATH: reference.to_json()})
    return version


def window(shift: float = 0.0, n: int = 50, ref: Reference = REF) -> WindowSketch:
    return ref.window(RNG.normal(shift, 1.0, size=(n, 3)), RNG.dirichlet([1, 1], n))


def send(
    ws: Workspace, source: str, start: int, w: WindowSketch, version: int = 1, **tags: str
) -> bool:
    body = SketchWindowIn("pump", version, source, start, start + H, w.to_dict(), tags)
    return ingest_window(ws, body, now=start + H)


def test_ingest_is_idempotent_and_merges_per_bucket(workspace: Workspace) -> None:
    v = register(workspace)
    a, b, c = window(), window(1.0), window(2.0)
    assert send(workspace, "device:d1", T0, a, v, site="plant-1")
    assert not send(workspace, "device:d1", T0, a, v, site="plant-1")  # resent: no change
    assert send(workspace, "device:d2", T0 + 60_000, b, v, site="plant-2")
    assert send(workspace, "batch:nightly", T0 + H, c, v)

    merged = merged_windows(workspace, "pump", v, start_ms=T0, end_ms=T0 + 2 * H, window_ms=H)
    assert [(m.start, m.end, m.sources) for m in merged] == [
        (T0, T0 + H, 2),
        (T0 + H, T0 + 2 * H, 1),
    ]
    assert merged[0].sketch.almost_equal(a.merge(b))
    assert merged[1].sketch == c

    whole = merged_windows(workspace, "pump", v, start_ms=T0, end_ms=T0 + 2 * H, window_ms=2 * H)
    assert len(whole) == 1 and whole[0].sketch.count == 150

    devices = merged_windows(
        workspace, "pump", v, start_ms=T0, end_ms=T0 + 2 * H, window_ms=2 * H, sources=["device:*"]
    )
    assert devices[0].sketch.count == 100 and devices[0].sources == 2
    site = merged_windows(
        workspace, "pump", v, start_ms=T0, end_ms=T0 + 2 * H, window_ms=H, tags={"site": "plant-2"}
    )
    assert len(site) == 1 and site[0].sketch == b
    assert (
        merged_windows(workspace, "pump", v, start_ms=T0 + 2 * H, end_ms=T0 + 3 * H, window_ms=H)
        == []
    )


def test_group_tags_filter_members(workspace: Workspace) -> None:
    v = register(workspace)
    send(workspace, "device:d1", T0, window(), v, **{"group.canary": "1"})
    send(workspace, "device:d2", T0, window(), v)
    only = merged_windows(
        workspace, "pump", v, start_ms=T0, end_ms=T0 + H, window_ms=H, tags={"group": "canary"}
    )
    assert only[0].sources == 1


def test_windows_must_be_binned_like_the_reference(workspace: Workspace) -> None:
    v = register(workspace)
    other = build_reference(RNG.normal(5, 1, size=(100, 3)), NAMES, labels=["ok", "worn"])
    with pytest.raises(ValidationFailed, match="not binned like") as caught:
        send(workspace, "device:d1", T0, other.window(RNG.normal(size=(5, 3))), v)
    assert caught.value.details["field"] == "sketch"
    assert "other histogram edges" in caught.value.message or "classes" in caught.value.message
    assert send(workspace, "device:d1", T0, window(), v)


def test_a_version_without_reference_takes_its_first_windows_layout(workspace: Workspace) -> None:
    v = register(workspace, reference=None)
    assert send(workspace, "endpoint:api", T0, window(), v)
    renamed = build_reference(RNG.normal(size=(100, 3)), ["a", "b", "c"], labels=["ok", "worn"])
    with pytest.raises(ValidationFailed, match="are in one only"):
        send(workspace, "endpoint:api", T0 + H, renamed.new_window(), v)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"source": "phone:1"}, "source", "device:<id>, endpoint:<name> or batch:<name>"),
        ({"model_version": 0}, "model_version", ">= 1"),
        ({"window_end": T0 - 1}, "window_end", "before window_start"),
        ({"window_end": T0 + 32 * 24 * H}, "window_end", "31 days"),
        ({"tags": {"bad key": "x"}}, "tags", "tag name"),
        ({"sketch": {"type": "histogram"}}, "sketch", "window_sketch"),
        ({"sketch": {"type": "window_sketch", "count": -1, "features": {}}}, "sketch", ">= 0"),
    ],
)
def test_malformed_windows_are_refused_naming_the_field(
    workspace: Workspace, change: dict[str, object], field: str, message: str
) -> None:
    v = register(workspace)
    body = {
        "model": "pump",
        "model_version": v,
        "source": "device:d1",
        "window_start": T0,
        "window_end": T0 + H,
        "sketch": window().to_dict(),
        "tags": {},
        **change,
    }
    with pytest.raises(ValidationFailed, match=message) as caught:
        ingest_window(workspace, SketchWindowIn(**body))  # type: ignore[arg-type]
    assert caught.value.details["field"] == field
    assert merged_windows(workspace, "pump", v, start_ms=T0, end_ms=T0 + 2 * H, window_ms=H) == []


def test_unknown_versions_and_bad_queries(workspace: Workspace) -> None:
    with pytest.raises(NotFound, match="register the model version"):
        send(workspace, "device:d1", T0, window(), 7)
    register(workspace)
    with pytest.raises(ValidationFailed, match="end_ms must be after"):
        merged_windows(workspace, "pump", 1, start_ms=T0, end_ms=T0, window_ms=H)
    with pytest.raises(ValidationFailed, match="longer window"):
        merged_windows(workspace, "pump", 1, start_ms=0, end_ms=T0, window_ms=1000)


def test_vectorised_merge_equals_pairwise_merge() -> None:
    wide = [window(shift, n=200) for shift in (0.0, 3.0, -2.0)]
    wide.append(REF.window(RNG.normal(size=(300, 3)) * 1e6, RNG.dirichlet([1, 1], 300)))
    wide.append(REF.new_window())
    layout = layout_of(wide[0])
    merged = merge_packed([pack_window(w) for w in wide], layout)
    assert merged.almost_equal(functools.reduce(WindowSketch.merge, wide))
    assert merge_packed([], layout) == REF.new_window()


def test_batch_sources_sketch_tables_and_arrays() -> None:
    x = RNG.normal(size=(40, 3))
    proba = RNG.dirichlet([1, 1], 40)
    table = {"rms": x[:, 0], "peak": x[:, 1], "crest": x[:, 2], "other": np.zeros(40)}
    table |= {"proba_ok": proba[:, 0], "proba_worn": proba[:, 1]}
    assert sketch_batch(REF, table) == REF.window(x, proba)
    assert sketch_batch(REF, x, proba=proba) == REF.window(x, proba)
    labels = {
        **{n: x[:, i] for i, n in enumerate(NAMES)},
        "prediction": ["ok"] * 30 + ["worn"] * 10,
    }
    w = sketch_batch(REF, labels)
    assert w.prediction is not None and w.prediction.counts.tolist() == [30, 10]
    with pytest.raises(ValidationFailed, match="lacks the reference's features"):
        sketch_batch(REF, {"rms": x[:, 0]})
