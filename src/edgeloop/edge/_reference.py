"""The monitoring reference of a model version, read back on the server."""

from __future__ import annotations

from edgeloop.errors import NotFound
from edgeloop.monitoring.reference import REFERENCE_PATH, Reference
from edgeloop.registry import model_version_files, parse_version
from edgeloop.workspace import Workspace

__all__ = ["load_reference"]


def load_reference(ws: Workspace, model: str, version: int | str) -> Reference:
    """The :class:`~edgeloop.monitoring.Reference` the edge export stored on
    ``models:/model/version`` (``monitoring/reference.json``).

    :class:`NotFound` for an unknown version, or one without a reference profile (exported
    before references existed, or never exported for the edge).
    """
    number = parse_version(version)
    for entry in model_version_files(ws, model, number):
        if entry.path == REFERENCE_PATH:
            return Reference.from_json(ws.artifacts.get_bytes(entry.digest))
    raise NotFound(
        f"models:/{model}/{number} has no reference profile ({REFERENCE_PATH}): export it for "
        "the edge (the pipeline's export step, or edgeloop.edge.build_edge_export and "
        "attach_edge_export, which write it), or attach one made with "
        "edgeloop.monitoring.build_reference(...).to_json()",
        details={"model": model, "version": number, "path": REFERENCE_PATH},
    )
