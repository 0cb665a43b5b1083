"""Export an int8 :class:`QuantizedModel` (and its :class:`FeaturePipeline`) as a C99 library.

The generated C needs no heap: weights, biases, requantization multipliers and shifts,
``mean``/``inv_std`` and labels are ``static const`` (flash on a microcontroller); activations
live in one ``static int8_t arena[ARENA_SIZE]`` with ``ARENA_SIZE == model.arena_bytes()``;
the feature blocks use static float buffers. The int8 outputs are bit-exact with
``model.run_int8(model.quantize_input(x))``; the features agree with
``FeaturePipeline.transform`` within ``PORT_TOLERANCE``.

>>> export = export_c(model, pipeline, window=(256, 3), prefix="pump")  # doctest: +SKIP
>>> sorted(export.files)  # doctest: +SKIP
['features.c', 'features.h', 'model.c', 'model.h']
>>> export.write_to("firmware/model")  # doctest: +SKIP

The ``"arduino"`` layout is an Arduino library: ``library.properties``, ``src/`` (the sources
and ``<library_name>.h``), an example sketch and a ``README.md`` documenting the API.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

import numpy as np

from edgeloop.edge._c.features import feature_count, features_source
from edgeloop.edge._c.literals import c_comment
from edgeloop.edge._c.model import model_source
from edgeloop.edge.runtime import Conv1D, Dense, MaxPool1D, QuantizedModel
from edgeloop.errors import ValidationFailed
from edgeloop.train.features import FeaturePipeline

__all__ = ["CExport", "export_c"]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True)
class CExport:
    """The generated library.

    ``files`` maps relative paths to contents; ``arena_bytes`` is the static int8 arena,
    ``feature_buffer_bytes`` the static float buffers of the feature path (the feature vector
    and the FFT work buffers; 0 without features); ``operations`` counts one inference (the
    model's :meth:`~QuantizedModel.operations`, then the feature blocks' prefixed
    ``features.``); ``api`` summarises the C API.
    """

    files: dict[str, bytes]
    arena_bytes: int
    feature_buffer_bytes: int
    operations: dict[str, int]
    api: str

    def write_to(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write every file under ``directory`` (created if needed); returns the paths."""
        root = Path(directory)
        written = []
        for name, content in sorted(self.files.items()):
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            written.append(path)
        return written


def _fail(message: str) -> NoReturn:
    raise ValidationFailed(message)


def _check_name(field: str, value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        _fail(
            f"{field} must be a C identifier of 1-63 letters, digits and underscores starting "
            f"with a letter, got {value!r}"
        )
    return str(value)


def _check_model(model: QuantizedModel) -> None:
    if not isinstance(model, QuantizedModel):
        _fail(f"model must be an edgeloop.edge.runtime.QuantizedModel, got {type(model).__name__}")
    if not model.layers:
        _fail("model.layers is empty; a C export needs at least one layer")
    for name, array in (("model.mean", model.mean), ("model.inv_std", model.inv_std)):
        if not np.isfinite(np.asarray(array, dtype=np.float32)).all():
            _fail(f"{name} must be finite float32 values")
    if not np.isfinite(np.float32(1.0) / np.float32(model.input.scale)):
        _fail(f"model.input.scale {model.input.scale!r} has no finite float32 reciprocal")
    for i, layer in enumerate(model.layers):
        where = f"model.layers[{i}]"
        if isinstance(layer, Dense | Conv1D):
            units = layer.weights.shape[0]
            if layer.weights.dtype != np.int8:
                _fail(f"{where}.weights must be int8, got {layer.weights.dtype}")
            for field, values, low, high in (
                ("bias", layer.bias, -(2**31), 2**31 - 1),
                ("multiplier", layer.multiplier, 0, 2**31 - 1),
                ("shift", layer.shift, -31, 30),
            ):
                array = np.asarray(values)
                if array.shape != (units,) or array.dtype.kind not in "iu":
                    _fail(
                        f"{where}.{field} must hold {units} integers, got {array.dtype} "
                        f"{array.shape}"
                    )
                if array.size and not (low <= int(array.min()) and int(array.max()) <= high):
                    _fail(f"{where}.{field} values must be in [{low}, {high}]")
            if isinstance(layer, Conv1D) and layer.stride < 1:
                _fail(f"{where}.stride must be >= 1, got {layer.stride}")
        elif isinstance(layer, MaxPool1D) and (layer.size < 1 or layer.stride < 1):
            _fail(f"{where}: size and stride must be >= 1, got {layer.size}, {layer.stride}")
    if not np.isfinite(np.float32(model.output.scale)):
        _fail(f"the output scale {model.output.scale!r} is not a finite float32")


def _check_window(
    model: QuantizedModel, features: FeaturePipeline | None, window: object
) -> tuple[int, int] | None:
    shape = tuple(model.input_shape)
    size = int(np.prod(shape))
    if window is not None:
        values = list(window) if isinstance(window, tuple | list) else []
        if len(values) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values
        ):
            _fail(f"window must be (n_samples, n_axes), two integers >= 1, got {window!r}")
        window = (int(values[0]), int(values[1]))
    if features is not None:
        if not isinstance(features, FeaturePipeline):
            _fail(f"features must be a FeaturePipeline or None, got {type(features).__name__}")
        if window is None:
            _fail(
                "window (n_samples, n_axes) is required with features: the C feature blocks "
                "are compiled for one window shape"
            )
        if window[1] != len(features.axes):
            _fail(
                f"window has {window[1]} axes but the feature pipeline has "
                f"{len(features.axes)} ({', '.join(features.axes)})"
            )
        count = feature_count(features)
        if shape != (count,):
            _fail(
                f"the feature pipeline gives {count} features but the model's input_shape "
                f"is {shape}; they must match"
            )
        return window
    if window is None:
        return (int(shape[0]), int(shape[1])) if len(shape) == 2 else None
    if (len(shape) == 2 and window != shape) or window[0] * window[1] != size:
        _fail(f"window {window} does not hold the model's input_shape {shape}")
    return window


def export_c(
    model: QuantizedModel,
    features: FeaturePipeline | None = None,
    *,
    window: tuple[int, int] | None = None,
    prefix: str = "edgeloop",
    layout: Literal["plain", "arduino"] = "plain",
    library_name: str = "edgeloop_model",
) -> CExport:
    """Generate a C99 library running ``model`` (after ``features``, when given).

    ``window`` is the raw sensor window ``(n_samples, n_axes)``: required with ``features``
    (their output length must equal the model's input size); without features it defaults to
    a 2-D ``model.input_shape``. Public C symbols start with ``prefix`` (macros with its upper
    case). ``layout="plain"`` gives ``model.h``, ``model.c`` (and ``features.h``,
    ``features.c``); ``"arduino"`` an Arduino library named ``library_name``.
    Raises :class:`ValidationFailed` for inputs that cannot be exported.
    """
    _check_model(model)
    prefix = _check_name("prefix", prefix)
    library_name = _check_name("library_name", library_name)
    if library_name.lower() in ("model", "features"):
        _fail(f"library_name {library_name!r} would clash with the library's model.h/features.h")
    if layout not in ("plain", "arduino"):
        _fail(f"layout must be 'plain' or 'arduino', got {layout!r}")
    shape = _check_window(model, features, window)
    sources: dict[str, str] = {}
    feature_bytes, const_bytes = 0, 0
    operations = dict(model.operations())
    if features is not None and shape is not None:
        feat = features_source(features, prefix=prefix, title=library_name, window=shape)
        sources["features.h"], sources["features.c"] = feat.header, feat.source
        feature_bytes = feat.buffer_bytes + 4 * feature_count(features)
        const_bytes += feat.const_bytes
        counts = features.operation_counts(shape[0])
        operations.update({f"features.{k}": v for k, v in counts.items()})
    net = model_source(
        model,
        prefix=prefix,
        title=library_name,
        window=shape,
        features=features is not None,
        feature_vector_bytes=4 * feature_count(features) if features else 0,
    )
    sources["model.h"], sources["model.c"] = net.header, net.source
    const_bytes += net.const_bytes
    api = _api(model, prefix, shape, features is not None)
    if layout == "arduino":
        files = {f"src/{name}": text for name, text in sources.items()}
        files["src/" + library_name + ".h"] = _library_header(library_name, features is not None)
        files["library.properties"] = _properties(model, library_name)
        sketch = f"{library_name}_infer"
        files[f"examples/{sketch}/{sketch}.ino"] = _sketch(library_name, prefix, sketch)
        summary = _Summary(
            model.arena_bytes(), feature_bytes, const_bytes, operations, features is not None
        )
        files["README.md"] = _readme(model, library_name, prefix, api, summary)
    else:
        files = sources
    return CExport(
        files={name: text.encode() for name, text in sorted(files.items())},
        arena_bytes=model.arena_bytes(),
        feature_buffer_bytes=feature_bytes,
        operations=operations,
        api=api,
    )


@dataclass(frozen=True)
class _Summary:
    arena_bytes: int
    feature_bytes: int
    const_bytes: int
    operations: Mapping[str, int]
    features: bool


def _api(model: QuantizedModel, prefix: str, window: tuple[int, int] | None, features: bool) -> str:
    p, m = prefix, prefix.upper()
    n_in = int(np.prod(model.input_shape))
    n_out = int(np.prod(model.shapes()[-1]))
    if features and window:
        what = f"a raw window float[{window[0]}][{window[1]}] (samples x axes, row-major)"
    else:
        what = f"the network's {n_in} float inputs"
    lines = [
        f'#include "model.h"  ({"and features.h; " if features else ""}link with -lm; '
        "build with -ffp-contract=off, without -ffast-math)",
        f"int {p}_model_init(void);  self-test; {m}_OK or {m}_ERR_SELFTEST",
        f"int {p}_model_predict(const float *input, float *scores);  input: {what}; "
        f"scores: float[{n_out}]",
        f"int {p}_model_predict_int8(const int8_t *input, int8_t *output);  int8[{n_in}] -> "
        f"int8[{n_out}]",
        f"int {p}_model_predict_class(const float *input);  class index >= 0, or an error",
        f"int {p}_model_quantize_input(const float *features, int8_t *q);  float[{n_in}] -> "
        f"int8[{n_in}]",
        f"const char *{p}_model_label(int i);  NULL outside [0, {len(model.labels)})",
    ]
    if features:
        lines.append(
            f"int {p}_features_compute(const float *window, float *out);  -> float[{n_in}] features"
        )
    lines += [
        f"Return codes: {m}_OK 0, {m}_ERR_NULL -1 (NULL pointer), {m}_ERR_INPUT -2 (NaN input; "
        f"raw windows: NaN or infinite), {m}_ERR_SELFTEST -3.",
        f"Macros: {m}_MODEL_INPUT_SIZE, {m}_MODEL_INT8_INPUT_SIZE, {m}_MODEL_OUTPUTS, "
        f"{m}_MODEL_CLASSES, {m}_MODEL_ARENA_SIZE, {m}_MODEL_HAS_FEATURES"
        + (f", {m}_MODEL_WINDOW_SAMPLES, {m}_MODEL_WINDOW_AXES" if window else "")
        + (f"; {m}_FEATURES_COUNT, {m}_FEATURES_BUFFER_BYTES" if features else "")
        + ".",
        "Not reentrant (static buffers); no heap.",
    ]
    return "\n".join(lines) + "\n"


def _library_header(library_name: str, features: bool) -> str:
    guard = f"{library_name.upper()}_LIBRARY_H"
    include = '#include "features.h"\n' if features else ""
    return f"""\
/* {library_name}.h -- include this to use the {library_name} library (see README.md).
 * Generated by edgeloop. */
#ifndef {guard}
#define {guard}

#include "model.h"
{include}
#endif /* {guard} */
"""


def _properties(model: QuantizedModel, library_name: str) -> str:
    labels = ", ".join(model.labels)
    sentence = f"int8 classifier ({len(model.labels)} classes) generated by edgeloop."
    paragraph = (
        f"Classes: {labels}. Static memory only: an arena of {model.arena_bytes()} bytes, "
        "weights in flash; bit-exact with edgeloop's int8 reference."
    )
    lines = [
        f"name={library_name}",
        "version=1.0.0",
        "author=edgeloop",
        "maintainer=edgeloop",
        f"sentence={sentence}",
        f"paragraph={' '.join(paragraph.split())}",
        "category=Data Processing",
        "architectures=*",
        f"includes={library_name}.h",
    ]
    return "\n".join(line.replace("\n", " ") for line in lines) + "\n"


def _sketch(library_name: str, prefix: str, sketch: str) -> str:
    p, m = prefix, prefix.upper()
    return f"""\
/*
 * {sketch}: classifies a test window once a second with the {library_name} library and
 * prints the scores, the class and the inference time. To classify real data, fill `input`
 * with your sensor's samples ({m}_MODEL_INPUT_SIZE values, in the order and units the model
 * was trained on) instead of calling fill_test_window().
 */
#include <{library_name}.h>

static float input[{m}_MODEL_INPUT_SIZE];
static float scores[{m}_MODEL_OUTPUTS];
static unsigned long tick = 0;

static void fill_test_window(float *values, unsigned long count, unsigned long phase)
{{
    for (unsigned long i = 0; i < count; ++i) {{
        values[i] = (float)sin(0.05 * (double)(i + phase));
    }}
}}

void setup()
{{
    Serial.begin(115200);
    int rc = {p}_model_init();
    Serial.print("{library_name} self-test: ");
    Serial.println(rc == {m}_OK ? "ok" : "FAILED, see the build notes in model.h");
}}

void loop()
{{
    fill_test_window(input, {m}_MODEL_INPUT_SIZE, tick++);
    unsigned long start = micros();
    int rc = {p}_model_predict(input, scores);
    unsigned long elapsed = micros() - start;
    if (rc != {m}_OK) {{
        Serial.print("predict failed: ");
        Serial.println(rc);
    }} else {{
        for (int i = 0; i < {m}_MODEL_OUTPUTS; ++i) {{
            Serial.print(scores[i], 4);
            Serial.print(" ");
        }}
        Serial.print("-> ");
        Serial.print({p}_model_label({p}_model_predict_class(input)));
        Serial.print(" in ");
        Serial.print(elapsed);
        Serial.println(" us");
    }}
    delay(1000);
}}
"""


def _readme(
    model: QuantizedModel, library_name: str, prefix: str, api: str, summary: _Summary
) -> str:
    p, m = prefix, prefix.upper()
    input_doc = "one raw window" if summary.features else "the network's float inputs"
    feature_note = (
        " The feature blocks (`features.h`)\nagree with edgeloop's `FeaturePipeline` within its "
        "port tolerance."
        if summary.features
        else ""
    )
    labels = ", ".join(f"`{c_comment(label)}`" for label in model.labels)
    ops = "\n".join(f"| {name} | {count} |" for name, count in summary.operations.items())
    shapes = " -> ".join(str(list(s)) for s in model.shapes())
    kinds = ", ".join(layer.kind for layer in model.layers)
    return f"""\
# {library_name}

An int8 classifier generated by edgeloop: {kinds}; shapes {shapes}; classes {labels}.
Its int8 outputs are bit-exact with edgeloop's reference executor.{feature_note}

## Use

```c
#include <{library_name}.h>

static float input[{m}_MODEL_INPUT_SIZE];  /* {input_doc} */
static float scores[{m}_MODEL_OUTPUTS];

void setup()
{{
    if ({p}_model_init() != {m}_OK) {{
        /* this build does not compute like the reference: see "Build notes" */
    }}
}}

void loop()
{{
    /* ... fill input ... */
    if ({p}_model_predict(input, scores) == {m}_OK) {{
        const char *name = {p}_model_label({p}_model_predict_class(input));
    }}
}}
```

See `examples/{library_name}_infer` for a complete sketch.

## API

```
{api.rstrip()}
```

`model.h` and `features.h` document every function and macro.

## Memory

| what | bytes |
|---|---|
| static const data in flash (weights, biases, requantization, tables) | {summary.const_bytes} |
| static int8 arena (RAM) | {summary.arena_bytes} |
| static float buffers of the feature path (RAM) | {summary.feature_bytes} |

No heap is used. Boards with a Harvard architecture (AVR: Uno, Mega) copy `const` data to RAM;
prefer a 32-bit board (ARM Cortex-M, ESP32, RP2040).

## Operations per inference

| operation | count |
|---|---|
{ops}

## Build notes

The float32 input quantization matches edgeloop's reference byte for byte only when floating
multiply-adds are not contracted and fast math is off. The critical product is rounded
explicitly in `model.c`, and `{p}_model_init()` checks the arithmetic, but to
keep the feature blocks closest to the reference add `-ffp-contract=off` to the C flags (for
the Arduino IDE, `compiler.c.extra_flags=-ffp-contract=off` in `platform.local.txt`). Never
build with `-ffast-math`: the sources stop with an `#error`.
"""
