"""The top-level namespace is exactly what we mean to export."""

from __future__ import annotations

import edgeloop


def test_top_level_all_is_exact() -> None:
    assert sorted(edgeloop.__all__) == sorted(
        [
            "ActiveRun",
            "Backend",
            "Conflict",
            "EdgeloopError",
            "HttpBackend",
            "IntegrityError",
            "LocalBackend",
            "NotFound",
            "PermissionDenied",
            "ValidationFailed",
            "__version__",
            "active_run",
            "data",
            "end_run",
            "get_backend",
            "load_model",
            "log_artifact",
            "log_input",
            "log_metric",
            "log_metrics",
            "log_model",
            "log_param",
            "log_params",
            "register_model",
            "search_runs",
            "set_backend",
            "set_tag",
            "set_tags",
            "start_run",
            "step",
        ]
    )
    for name in edgeloop.__all__:
        assert hasattr(edgeloop, name), name


def test_subpackages_declare_their_public_surface() -> None:
    import importlib

    for package in (
        "artifacts",
        "client",
        "data",
        "datasets",
        "governance",
        "monitoring",
        "monitors",
        "pipelines",
        "registry",
        "server",
        "sim",
        "store",
        "tracking",
        "train",
    ):
        module = importlib.import_module(f"edgeloop.{package}")
        for name in module.__all__:
            assert hasattr(module, name), f"edgeloop.{package}.{name}"
