"""Model formats: how a trained model becomes files in a run, and files become a predictor.

A model directory holds ``edgeloop-model.json`` (flavor, signature, library versions) and the
flavor's files. The ``sklearn`` flavor stores the estimator with joblib.
"""

from __future__ import annotations

import io
import json
import platform
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgeloop.errors import ValidationFailed

__all__ = ["MODEL_META", "Predictor", "infer_signature", "load_predictor", "save_sklearn"]

MODEL_META = "edgeloop-model.json"
_SKLEARN_FILE = "model.joblib"


def _schema(example: Any) -> dict[str, Any]:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(example, pd.DataFrame):
        return {
            "type": "columns",
            "columns": [{"name": str(c), "dtype": str(t)} for c, t in example.dtypes.items()],
        }
    arr = np.asarray(example)
    return {"type": "tensor", "dtype": str(arr.dtype), "shape": [-1, *arr.shape[1:]]}


def infer_signature(inputs: Any, outputs: Any | None = None) -> dict[str, Any]:
    """``{"inputs": schema, "outputs": schema}`` from an input (and output) example."""
    signature = {"inputs": _schema(inputs)}
    if outputs is not None:
        signature["outputs"] = _schema(outputs)
    return signature


def save_sklearn(model: Any, input_example: Any | None = None) -> dict[str, bytes]:
    """Files (relative path → bytes) of a scikit-learn estimator in the ``sklearn`` flavor."""
    import joblib
    import sklearn

    if not hasattr(model, "predict"):
        raise ValidationFailed(
            f"{type(model).__name__} has no predict(); log a fitted scikit-learn estimator"
        )
    signature: dict[str, Any] = {}
    if input_example is not None:
        outputs = model.predict(
            input_example[:5] if hasattr(input_example, "__getitem__") else input_example
        )
        signature = infer_signature(input_example, outputs)
    buf = io.BytesIO()
    joblib.dump(model, buf)
    meta = {
        "flavor": "sklearn",
        "estimator": f"{type(model).__module__}.{type(model).__name__}",
        "files": [_SKLEARN_FILE],
        "signature": signature,
        "classes": [str(c) for c in getattr(model, "classes_", [])],
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
    }
    return {
        MODEL_META: json.dumps(meta, indent=2, sort_keys=True).encode(),
        _SKLEARN_FILE: buf.getvalue(),
    }


class Predictor:
    """A loaded model: ``predict`` (and ``predict_proba`` where the model has it).

    Inputs are checked against the signature first, so a wrong shape gets a clear error.
    """

    def __init__(self, model: Any, meta: Mapping[str, Any], uri: str = "") -> None:
        self.model = model
        self.meta = dict(meta)
        self.uri = uri

    @property
    def signature(self) -> dict[str, Any]:
        return dict(self.meta.get("signature") or {})

    @property
    def flavor(self) -> str:
        return str(self.meta.get("flavor", ""))

    def _check(self, inputs: Any) -> Any:
        schema = self.signature.get("inputs")
        if not schema:
            return inputs
        if schema["type"] == "columns":
            expected = [c["name"] for c in schema["columns"]]
            columns = [str(c) for c in getattr(inputs, "columns", [])]
            missing = [c for c in expected if c not in columns]
            if columns and missing:
                raise ValidationFailed(
                    f"input is missing column(s) {', '.join(missing)} that "
                    f"{self.uri or 'the model'} expects"
                )
            return inputs
        arr = np.asarray(inputs)
        shape = schema["shape"]
        if arr.ndim != len(shape) or any(
            s not in (-1, a) for s, a in zip(shape, arr.shape, strict=True)
        ):
            want = "x".join("N" if s == -1 else str(s) for s in shape)
            raise ValidationFailed(
                f"input has shape {'x'.join(map(str, arr.shape))}; {self.uri or 'the model'} "
                f"expects {want}"
            )
        return arr

    def predict(self, inputs: Any) -> Any:
        return self.model.predict(self._check(inputs))

    def predict_proba(self, inputs: Any) -> Any:
        if not hasattr(self.model, "predict_proba"):
            raise ValidationFailed(f"{self.meta.get('estimator')} has no predict_proba")
        return self.model.predict_proba(self._check(inputs))


def load_predictor(files: Mapping[str, bytes], uri: str = "") -> Predictor:
    """A :class:`Predictor` from a model directory's files (relative path → bytes)."""
    if MODEL_META not in files:
        raise ValidationFailed(
            f"{uri or 'the model'} has no {MODEL_META}; register a directory written by "
            "edgeloop.log_model"
        )
    try:
        meta = json.loads(files[MODEL_META])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed(f"{MODEL_META} of {uri or 'the model'} is not valid JSON") from exc
    flavor = meta.get("flavor")
    if flavor != "sklearn":
        raise ValidationFailed(
            f"{uri or 'the model'} has flavor {flavor!r}; this build loads: sklearn"
        )
    import joblib

    model = joblib.load(io.BytesIO(files[_SKLEARN_FILE]))
    return Predictor(model, meta, uri)
