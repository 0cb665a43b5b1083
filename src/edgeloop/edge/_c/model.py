"""``model.h`` / ``model.c``: the int8 network of a :class:`QuantizedModel` in C99.

The C does what :mod:`edgeloop.edge.runtime` does, operation for operation: the float32 input
standardisation and quantization (the scaled value is stored to a ``volatile`` float before
the ``+ 0.5``, so no compiler flag can fuse that multiply-add), then each layer with exact
integer arithmetic (gemmlowp SRDHM and RoundingDivideByPOT, written without
implementation-defined shifts of negative numbers). Activations ping-pong between the two ends
of one static arena: buffer ``i`` sits at the start when the previous one sits at the end and
the other way round; a flatten keeps its input's place (it moves no data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeloop.edge._c.literals import c_array, c_comment, c_float, c_string, floats, fnv1a, ints
from edgeloop.edge.runtime import Conv1D, Dense, Flatten, MaxPool1D, QuantizedModel

__all__ = ["ModelSource", "model_source", "selftest_hash", "status_codes"]

INT32_MAX = 2**31 - 1
SELFTEST_SEED = 0x2545F491


@dataclass(frozen=True)
class ModelSource:
    header: str
    source: str
    const_bytes: int  # static const data (flash)


def status_codes(prefix: str) -> str:
    """The return codes, shared (guarded) by ``model.h`` and ``features.h``."""
    macro = prefix.upper()
    return f"""\
/* Return codes: 0 is success, every error is negative. */
#ifndef {macro}_OK
#define {macro}_OK 0               /* success */
#define {macro}_ERR_NULL (-1)      /* a pointer argument is NULL */
#define {macro}_ERR_INPUT (-2)     /* an input value is NaN (raw windows: NaN or infinite) */
#define {macro}_ERR_SELFTEST (-3)  /* {prefix}_model_init(): arithmetic differs */
#endif
"""


def _input_period(model: QuantizedModel) -> int:
    """The shortest of (1, channels, all) after which ``mean`` and ``inv_std`` repeat."""
    mean, inv_std = model.mean.ravel(), model.inv_std.ravel()
    size = mean.size
    for period in sorted({1, int(model.input_shape[-1]), size}):
        if size % period == 0 and all(
            np.array_equal(np.tile(a[:period], size // period).view(np.uint32), a.view(np.uint32))
            for a in (mean, inv_std)
        ):
            return period
    return size


def _accumulator_bits(layer: Dense | Conv1D, input_zero_point: int) -> int:
    """32 when no partial sum of any output channel can leave int32, else 64."""
    max_dx = max(127 - input_zero_point, input_zero_point + 128)
    w = np.abs(layer.weights.astype(np.int64)).reshape(layer.weights.shape[0], -1)
    bound = np.abs(layer.bias.astype(np.int64)) + w.sum(axis=1) * max_dx
    return 32 if int(bound.max()) <= INT32_MAX else 64


def _selftest_input(model: QuantizedModel) -> np.ndarray:
    """The float input the C self-test synthesises: ``mean + k/16 / inv_std``, ``k`` in
    [-64, 63] from a 32-bit LCG (``mean`` where ``inv_std`` is 0), in float32."""
    n, state, ks = int(model.mean.size), SELFTEST_SEED, []
    for _ in range(n):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        ks.append((state >> 25) - 64)
    u = np.array(ks, dtype=np.float32) * np.float32(0.0625)
    mean, inv_std = model.mean.ravel(), model.inv_std.ravel()
    with np.errstate(all="ignore"):
        x = np.where(inv_std != 0, mean + u / inv_std, mean).astype(np.float32)
    return x.reshape(1, *model.input_shape)


def selftest_hash(model: QuantizedModel) -> int:
    """FNV-1a of the quantized self-test input followed by the int8 output, per the reference."""
    with np.errstate(all="ignore"):
        q = model.quantize_input(_selftest_input(model))
    out = model.run_int8(q)
    return fnv1a(out.tobytes(), fnv1a(q.tobytes()))


_KERNELS = """\
/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), C division truncating
 * toward zero after a +-2^30 nudge. */
static int32_t srdhm(int32_t a, int32_t b)
{
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero, exponent in
 * [0, 31]. The floor division is spelt out: >> of a negative int is implementation-defined. */
static int32_t rdbpot(int32_t x, int32_t exponent)
{
    uint32_t mask = ((uint32_t)1 << exponent) - 1u;
    uint32_t remainder = (uint32_t)x & mask;
    uint32_t threshold = (mask >> 1) + (x < 0 ? 1u : 0u);
    int32_t floor_div = x >= 0 ? (x >> exponent) : -1 - ((-1 - x) >> exponent);
    return floor_div + (remainder > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier (acc << left saturating to int32), plus the output
 * zero point, clamped to [act_min, 127]. */
static int8_t requantize(int64_t acc, int32_t multiplier, int32_t shift, int32_t zero_point,
                         int32_t act_min)
{
    int32_t left = shift > 0 ? shift : 0;
    int32_t right = shift > 0 ? 0 : -shift;
    int32_t scaled;
    int32_t q;
    if (acc > ((int64_t)INT32_MAX >> left)) {
        scaled = INT32_MAX;
    } else if (acc < -((int64_t)1 << (31 - left))) {
        scaled = INT32_MIN;
    } else {
        scaled = (int32_t)acc * (int32_t)((uint32_t)1 << left);
    }
    q = rdbpot(srdhm(scaled, multiplier), right);
    if (q > 127 - zero_point) {
        q = 127 - zero_point;
    }
    if (q < act_min - zero_point) {
        q = act_min - zero_point;
    }
    return (int8_t)(q + zero_point);
}
"""

_DOT = """\
/* Dense and Conv1D: for each of `positions` input patches of `depth` values, `step` values
 * apart, and each unit: bias + sum((x - input_zero_point) * w), requantized. A dense layer is
 * one patch; a channels-last Conv1D patch is kernel * channels contiguous values. The sums
 * are exact: export checked that no partial sum leaves ${acc}. */
static void dot_layer_${bits}(const int8_t *input, int8_t *output, uint32_t positions,
                          uint32_t step, uint32_t depth, uint32_t units, const int8_t *weights,
                          const int32_t *bias, const int32_t *multiplier, const int8_t *shift,
                          int32_t input_zero_point, int32_t output_zero_point, int32_t act_min)
{
    uint32_t t;
    uint32_t u;
    uint32_t i;
    for (t = 0; t < positions; ++t) {
        const int8_t *x = input + t * step;
        for (u = 0; u < units; ++u) {
            const int8_t *w = weights + u * depth;
            ${acc} acc = bias[u];
            for (i = 0; i < depth; ++i) {
                acc += (${acc})(((int32_t)x[i] - input_zero_point) * (int32_t)w[i]);
            }
            *output++ = requantize(acc, multiplier[u], shift[u], output_zero_point, act_min);
        }
    }
}
"""

_MAXPOOL = """\
/* MaxPool1D over time on a channels-last buffer. */
static void maxpool(const int8_t *input, int8_t *output, uint32_t out_length, uint32_t size,
                    uint32_t stride, uint32_t channels)
{
    uint32_t t;
    uint32_t c;
    uint32_t k;
    for (t = 0; t < out_length; ++t) {
        const int8_t *x = input + t * stride * channels;
        for (c = 0; c < channels; ++c) {
            int8_t m = x[c];
            for (k = 1; k < size; ++k) {
                if (x[k * channels + c] > m) {
                    m = x[k * channels + c];
                }
            }
            *output++ = m;
        }
    }
}
"""


def _describe(model: QuantizedModel) -> list[str]:
    shapes = model.shapes()
    lines = [f"input {list(shapes[0])}"]
    for layer, shape in zip(model.layers, shapes[1:], strict=True):
        if isinstance(layer, Dense):
            lines.append(f"dense {shape[0]}{' relu' if layer.relu else ''}")
        elif isinstance(layer, Conv1D):
            filters, kernel, _ = layer.weights.shape
            relu = " relu" if layer.relu else ""
            lines.append(f"conv1d {filters}x{kernel}/{layer.stride}{relu} -> {list(shape)}")
        elif isinstance(layer, MaxPool1D):
            lines.append(f"maxpool {layer.size}/{layer.stride} -> {list(shape)}")
        else:
            lines.append(f"flatten -> {list(shape)}")
    return lines


def _arena_offsets(model: QuantizedModel) -> list[int]:
    """Where each buffer (the input, then every layer's output) starts in the arena."""
    sizes = [int(np.prod(s)) for s in model.shapes()]
    at_end, offsets = False, [0]
    for layer, size in zip(model.layers, sizes[1:], strict=True):
        if not isinstance(layer, Flatten):  # a flatten keeps its input's place
            at_end = not at_end
        offsets.append(model.arena_bytes() - size if at_end else 0)
    return offsets


def _layers(model: QuantizedModel) -> tuple[list[str], list[str], set[int], int]:
    """(constant arrays, run_layers() statements, accumulator widths used, const bytes)."""
    shapes, offsets = model.shapes(), _arena_offsets(model)
    arrays: list[str] = []
    calls: list[str] = []
    widths: set[int] = set()
    const_bytes, zero_point = 0, model.input.zero_point
    for i, layer in enumerate(model.layers):
        src, dst = f"arena + {offsets[i]}", f"arena + {offsets[i + 1]}"
        shape, out = shapes[i], shapes[i + 1]
        if isinstance(layer, Dense | Conv1D):
            units = int(layer.weights.shape[0])
            depth = int(layer.weights.size) // units
            bits = _accumulator_bits(layer, zero_point)
            widths.add(bits)
            kind = "dense" if isinstance(layer, Dense) else "conv1d"
            arrays.append(
                c_array(
                    "int8_t",
                    f"l{i}_weights",
                    ints(layer.weights),
                    per_line=16,
                    comment=f"layer {i} ({kind}): weights {list(layer.weights.shape)}",
                )
            )
            arrays.append(c_array("int32_t", f"l{i}_bias", ints(layer.bias), per_line=8))
            arrays.append(
                c_array("int32_t", f"l{i}_multiplier", ints(layer.multiplier), per_line=8)
            )
            arrays.append(c_array("int8_t", f"l{i}_shift", ints(layer.shift), per_line=16))
            const_bytes += int(layer.weights.size) + 9 * units
            out_zp = layer.output.zero_point
            act_min = out_zp if layer.relu else -128
            if isinstance(layer, Dense):
                positions, step = 1, 0
            else:
                positions, step = int(out[0]), layer.stride * int(shape[1])
            calls.append(
                f"    /* {i}: {kind} {list(shape)} -> {list(out)}"
                f"{', ReLU' if layer.relu else ''} */\n"
                f"    dot_layer_acc{bits}({src}, {dst}, {positions}u, {step}u, {depth}u, {units}u, "
                f"l{i}_weights, l{i}_bias,\n"
                f"        l{i}_multiplier, l{i}_shift, {zero_point}, {out_zp}, {act_min});"
            )
            zero_point = out_zp
        elif isinstance(layer, MaxPool1D):
            calls.append(
                f"    /* {i}: maxpool {list(shape)} -> {list(out)} */\n"
                f"    maxpool({src}, {dst}, {out[0]}u, {layer.size}u, {layer.stride}u, "
                f"{shape[1]}u);"
            )
        else:
            calls.append(f"    /* {i}: flatten {list(shape)} -> {list(out)}: no data moves */")
    return arrays, calls, widths, const_bytes


def model_source(
    model: QuantizedModel,
    *,
    prefix: str,
    title: str,
    window: tuple[int, int] | None,
    features: bool,
    feature_vector_bytes: int,
) -> ModelSource:
    """``model.h`` and ``model.c`` for ``model``; public names start with ``prefix``."""
    p, m = prefix, prefix.upper()
    n_in = int(np.prod(model.input_shape))
    n_out = int(np.prod(model.shapes()[-1]))
    n_classes = len(model.labels)
    period = _input_period(model)
    arrays, calls, widths, const_bytes = _layers(model)
    offsets = _arena_offsets(model)
    float_in = window[0] * window[1] if features and window else n_in
    label_bytes = [len(label.encode()) + 1 for label in model.labels]
    label_offsets = np.cumsum([0, *label_bytes[:-1]]).tolist()
    const_bytes += 8 * period + sum(label_bytes) + 4 * n_classes
    network = " -> ".join(_describe(model))
    if window:
        window_doc = f"#define {m}_MODEL_WINDOW_SAMPLES {window[0]}\n"
        window_doc += f"#define {m}_MODEL_WINDOW_AXES {window[1]}\n"
    else:
        window_doc = ""
    if features:
        predict_input = (
            f"`input` is one raw window of {m}_MODEL_WINDOW_SAMPLES rows of "
            f"{m}_MODEL_WINDOW_AXES\n *   float values (row-major [samples][axes]); "
            f"the feature blocks (features.h) turn it into\n *   the "
            f"{m}_MODEL_INT8_INPUT_SIZE features the network reads."
        )
    else:
        predict_input = f"`input` holds the {m}_MODEL_INPUT_SIZE float inputs of the network"
        if len(model.input_shape) == 2:
            predict_input += (
                f",\n *   row-major [{model.input_shape[0]}][{model.input_shape[1]}] "
                "(time, channels)."
            )
        else:
            predict_input += "."
    feature_ram = (
        f" plus {feature_vector_bytes} bytes of feature vector and the\n"
        f" * buffers of features.h ({m}_FEATURES_BUFFER_BYTES)"
        if features
        else ""
    )
    header = f"""\
/*
 * model.h -- {c_comment(title)}: an int8 classifier generated by edgeloop. Do not edit.
 *
 * Network: {c_comment(network)}.
 * Memory: {const_bytes} bytes of static const data (flash); one static int8 arena of
 * {m}_MODEL_ARENA_SIZE bytes{feature_ram}; no heap.
 *
 * Build: C99 with libm (-lm). The float32 input quantization reproduces edgeloop's reference
 * byte for byte only if the compiler neither contracts floating multiply-adds into fused ones
 * nor uses fast math: build with -ffp-contract=off (GCC, Clang), without -ffast-math, on a
 * target that evaluates float as float (FLT_EVAL_METHOD 0: ARM, RISC-V, x86-64, ...). The
 * int8 network is exact on any C99 compiler. {p}_model_init() checks both.
 *
 * The functions share static buffers: they are not reentrant; call them from one thread.
 */
#ifndef {m}_MODEL_H
#define {m}_MODEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

{status_codes(p)}
#define {m}_MODEL_HAS_FEATURES {int(features)}  /* 1: predict() takes raw windows */
#define {m}_MODEL_INPUT_SIZE {float_in}  /* floats that predict() reads */
#define {m}_MODEL_INT8_INPUT_SIZE {n_in}  /* int8 values predict_int8() reads */
#define {m}_MODEL_OUTPUTS {n_out}  /* scores written by predict() */
#define {m}_MODEL_CLASSES {n_classes}  /* labels; 2 classes from 1 output: a logit */
#define {m}_MODEL_ARENA_SIZE {model.arena_bytes()}  /* bytes of the static int8 arena */
{window_doc}
/* Self-test: quantizes a synthetic input and runs the network on it, comparing a hash of the
 * int8 values with edgeloop's reference. Returns {m}_OK, or {m}_ERR_SELFTEST when this
 * build computes differently (see "Build" above). Optional; call once at start-up. */
int {p}_model_init(void);

/* Classifies one input and writes the dequantized outputs to scores[{m}_MODEL_OUTPUTS]
 * (scale * (q - zero_point), float32).
 *   {predict_input}
 * Returns {m}_OK, {m}_ERR_NULL or {m}_ERR_INPUT. */
int {p}_model_predict(const float *input, float *scores);

/* Runs the int8 network: input[{m}_MODEL_INT8_INPUT_SIZE] quantized values to
 * output[{m}_MODEL_OUTPUTS] int8 scores. Returns {m}_OK or {m}_ERR_NULL. */
int {p}_model_predict_int8(const int8_t *input, int8_t *output);

/* The class index of one input (the same `input` as {p}_model_predict): the largest score
 * (the first on a tie), or for one output unit 1 when its score is > 0, else 0.
 * Returns the index (>= 0) or {m}_ERR_NULL / {m}_ERR_INPUT. */
int {p}_model_predict_class(const float *input);

/* Standardises and quantizes the network's float inputs: features[{m}_MODEL_INT8_INPUT_SIZE]
 * to q[{m}_MODEL_INT8_INPUT_SIZE], as {p}_model_predict does before the network.
 * Returns {m}_OK, {m}_ERR_NULL or {m}_ERR_INPUT (a NaN value). */
int {p}_model_quantize_input(const float *features, int8_t *q);

/* The name of class i, or NULL when i is not in [0, {m}_MODEL_CLASSES). */
const char *{p}_model_label(int i);

#ifdef __cplusplus
}}
#endif

#endif /* {m}_MODEL_H */
"""
    index = "i" if period == n_in else ("0" if period == 1 else f"i % {period}u")
    kernels = _KERNELS + "".join(
        "\n" + _DOT.replace("${bits}", f"acc{bits}").replace("${acc}", f"int{bits}_t")
        for bits in sorted(widths)
    )
    if any(isinstance(layer, MaxPool1D) for layer in model.layers):
        kernels += "\n" + _MAXPOOL
    labels = "\n".join(f"    {c_string(label + chr(0))}" for label in model.labels)
    if features:
        compute = f"""\
    int rc = {p}_features_compute(input, feature_vector);
    if (rc != {m}_OK) {{
        return rc;
    }}
    input = feature_vector;
"""
        feature_include = '#include "features.h"\n'
        feature_buffer = f"static float feature_vector[{n_in}];\n"
    else:
        compute = feature_include = feature_buffer = ""
    argmax_locals = argmax_init = ""
    if n_out == 1:
        argmax = """\
    return ((float)out[0] - OUTPUT_ZERO_POINT) * OUTPUT_SCALE > 0.0f ? 1 : 0;"""
    else:
        argmax_locals = "    uint32_t i;\n    uint32_t best = 0;\n    float best_score;\n"
        argmax_init = "    best_score = ((float)out[0] - OUTPUT_ZERO_POINT) * OUTPUT_SCALE;\n"
        argmax = f"""\
    for (i = 1; i < {m}_MODEL_OUTPUTS; ++i) {{
        float score = ((float)out[i] - OUTPUT_ZERO_POINT) * OUTPUT_SCALE;
        if (score > best_score) {{
            best = i;
            best_score = score;
        }}
    }}
    return (int)best;"""
    inv_scale = np.float32(1.0) / np.float32(model.input.scale)
    same_for_all = "    (void)i; /* one mean and inv_std for all */\n" if period == 1 else ""
    source = f"""\
/* model.c -- {c_comment(title)}: the int8 network, generated by edgeloop. Do not edit.
 * See model.h for the API and the build flags. */
#if defined(__FAST_MATH__)
#error "model.c needs IEEE float32 arithmetic: build it without -ffast-math"
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "model.h"
{feature_include}
#include <math.h>
#include <stdint.h>
#include <stddef.h>

/* Input: z = (x - mean) * inv_std; q = clamp(floor(z * inv_scale + 0.5) + zero_point). */
#define INPUT_INV_SCALE {c_float(inv_scale, "1 / input scale")}
#define INPUT_ZERO_POINT ({c_float(model.input.zero_point)})
#define OUTPUT_SCALE {c_float(model.output.scale, "output scale")}
#define OUTPUT_ZERO_POINT ({c_float(model.output.zero_point)})
#define INPUT_INDEX(i) ({index})
#define SELFTEST_SEED {SELFTEST_SEED:#x}u
#define SELFTEST_HASH {selftest_hash(model):#x}u
#define ARENA_INPUT (arena + {offsets[0]})
#define ARENA_OUTPUT (arena + {offsets[-1]})

{c_array("float", "input_mean", floats(model.mean.ravel()[:period], "input mean"), per_line=6)}
{
        c_array(
            "float",
            "input_inv_std",
            floats(model.inv_std.ravel()[:period], "1 / input std"),
            per_line=6,
        )
    }
{chr(10).join(arrays)}
/* Class names, each NUL-terminated, and where each starts. */
static const char label_text[] =
{labels};
{c_array("uint32_t", "label_offset", [f"{o}u" for o in label_offsets], per_line=8)}
/* Activations: buffer i at the start of the arena and buffer i + 1 at its end, or the other
 * way round (the size is the largest sum of two consecutive buffers). */
static int8_t arena[{m}_MODEL_ARENA_SIZE];
{feature_buffer}
{kernels}
/* One value of the network's input to int8 (i: its index). */
static int quantize_value(float x, uint32_t i, int8_t *q)
{{
{same_for_all}\
    float z = (x - input_mean[INPUT_INDEX(i)]) * input_inv_std[INPUT_INDEX(i)];
    volatile float scaled = z * INPUT_INV_SCALE; /* rounded to float32: never fused */
    float v = floorf(scaled + 0.5f) + INPUT_ZERO_POINT;
    if (v != v) {{
        return {m}_ERR_INPUT;
    }}
    *q = v <= -128.0f ? (int8_t)-128 : v >= 127.0f ? (int8_t)127 : (int8_t)v;
    return {m}_OK;
}}

static void run_layers(void)
{{
{chr(10).join(calls)}
}}

/* Quantizes `input` (raw window or network input) into the arena and runs the network. */
static int infer(const float *input)
{{
    uint32_t i;
{compute}\
    for (i = 0; i < {m}_MODEL_INT8_INPUT_SIZE; ++i) {{
        if (quantize_value(input[i], i, ARENA_INPUT + i) != {m}_OK) {{
            return {m}_ERR_INPUT;
        }}
    }}
    run_layers();
    return {m}_OK;
}}

int {p}_model_init(void)
{{
    uint32_t state = SELFTEST_SEED;
    uint32_t hash = 0x811c9dc5u;
    uint32_t i;
    for (i = 0; i < {m}_MODEL_INT8_INPUT_SIZE; ++i) {{
        float mean = input_mean[INPUT_INDEX(i)];
        float inv_std = input_inv_std[INPUT_INDEX(i)];
        float u;
        state = state * 1664525u + 1013904223u;
        u = (float)((int32_t)(state >> 25) - 64) * 0.0625f;
        if (quantize_value(inv_std != 0.0f ? mean + u / inv_std : mean, i, ARENA_INPUT + i)
            != {m}_OK) {{
            return {m}_ERR_SELFTEST;
        }}
        hash = (hash ^ (uint8_t)ARENA_INPUT[i]) * 0x01000193u;
    }}
    run_layers();
    for (i = 0; i < {m}_MODEL_OUTPUTS; ++i) {{
        hash = (hash ^ (uint8_t)ARENA_OUTPUT[i]) * 0x01000193u;
    }}
    return hash == SELFTEST_HASH ? {m}_OK : {m}_ERR_SELFTEST;
}}

int {p}_model_quantize_input(const float *features, int8_t *q)
{{
    uint32_t i;
    if (features == NULL || q == NULL) {{
        return {m}_ERR_NULL;
    }}
    for (i = 0; i < {m}_MODEL_INT8_INPUT_SIZE; ++i) {{
        if (quantize_value(features[i], i, q + i) != {m}_OK) {{
            return {m}_ERR_INPUT;
        }}
    }}
    return {m}_OK;
}}

int {p}_model_predict(const float *input, float *scores)
{{
    const int8_t *out = ARENA_OUTPUT;
    uint32_t i;
    int rc;
    if (input == NULL || scores == NULL) {{
        return {m}_ERR_NULL;
    }}
    rc = infer(input);
    if (rc != {m}_OK) {{
        return rc;
    }}
    for (i = 0; i < {m}_MODEL_OUTPUTS; ++i) {{
        scores[i] = ((float)out[i] - OUTPUT_ZERO_POINT) * OUTPUT_SCALE;
    }}
    return {m}_OK;
}}

int {p}_model_predict_int8(const int8_t *input, int8_t *output)
{{
    uint32_t i;
    if (input == NULL || output == NULL) {{
        return {m}_ERR_NULL;
    }}
    for (i = 0; i < {m}_MODEL_INT8_INPUT_SIZE; ++i) {{
        ARENA_INPUT[i] = input[i];
    }}
    run_layers();
    for (i = 0; i < {m}_MODEL_OUTPUTS; ++i) {{
        output[i] = ARENA_OUTPUT[i];
    }}
    return {m}_OK;
}}

int {p}_model_predict_class(const float *input)
{{
    const int8_t *out = ARENA_OUTPUT;
{argmax_locals}\
    int rc;
    if (input == NULL) {{
        return {m}_ERR_NULL;
    }}
    rc = infer(input);
    if (rc != {m}_OK) {{
        return rc;
    }}
{argmax_init}\
{argmax}
}}

const char *{p}_model_label(int i)
{{
    if (i < 0 || i >= {m}_MODEL_CLASSES) {{
        return NULL;
    }}
    return label_text + label_offset[i];
}}
"""
    return ModelSource(header=header, source=source, const_bytes=const_bytes)
