"""``features.h`` / ``features.c``: a :class:`FeaturePipeline` in C99 for one window shape.

The C follows :mod:`edgeloop.train.features` step by step in float32 (shifted mean, biased
moments, first-order IIR filter, framing, periodic Hann window, band energies in log10, peak
picking with numpy's tie order) with sequential sums and its own FFT: the real FFT of length
``L`` (a power of two, 16..65536) is an iterative radix-2 complex FFT of ``L/2`` points on the
even/odd samples, then split into the ``L/2 + 1`` bins. Constants (Hann tables, twiddles,
filter coefficients, band bins) are computed here as the Python reference computes them and
written as exact float32 literals. Results agree with :meth:`FeaturePipeline.transform`
within :data:`~edgeloop.train.features.PORT_TOLERANCE`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeloop.edge._c.literals import c_array, c_comment, c_float, floats
from edgeloop.edge._c.model import status_codes
from edgeloop.train.features import (
    LOG_FLOOR,
    PEAK_FLOOR,
    VARIANCE_FLOOR,
    FeaturePipeline,
    FlattenBlock,
    SpectralBlock,
)

__all__ = ["FeatureSource", "feature_count", "features_source"]


@dataclass(frozen=True)
class FeatureSource:
    header: str
    source: str
    buffer_bytes: int  # static float buffers of features.c
    const_bytes: int  # static const data (flash)


def feature_count(pipeline: FeaturePipeline) -> int:
    """Length of the feature vector (it does not depend on the window length)."""
    return sum(len(b.feature_names()) * len(pipeline.axes) for b in pipeline.blocks)


_COMMON = """\
/* Shifted mean of one axis: x[0] + sum(x - x[0]) / n. */
static float shifted_mean(const float *x)
{
    float first = x[0];
    float sum = 0.0f;
    uint32_t i;
    for (i = 0; i < N_SAMPLES; ++i) {
        sum += x[i * N_AXES] - first;
    }
    return first + sum / N_FLOAT;
}
"""

_FLATTEN = """\
/* FlattenBlock on one axis (x[i * N_AXES]): the statistics listed in `stats`, in order.
 * Moments are the biased (population) ones; skewness and kurtosis are 0 when m2 <= 1e-18. */
static void flatten_block(const float *x, const uint8_t *stats, uint32_t n_stats, float *out)
{
    float mean = shifted_mean(x);
    float lo = x[0];
    float hi = x[0];
    float squares = 0.0f;
    float m2 = 0.0f;
    float m3 = 0.0f;
    float m4 = 0.0f;
    float values[7];
    uint32_t i;
    for (i = 0; i < N_SAMPLES; ++i) {
        float v = x[i * N_AXES];
        float d = v - mean;
        float d2 = d * d;
        if (v < lo) {
            lo = v;
        }
        if (v > hi) {
            hi = v;
        }
        squares += v * v;
        m2 += d2;
        m3 += d2 * d;
        m4 += d2 * d2;
    }
    m2 = m2 / N_FLOAT;
    m3 = m3 / N_FLOAT;
    m4 = m4 / N_FLOAT;
    values[STAT_MEAN] = mean;
    values[STAT_MIN] = lo;
    values[STAT_MAX] = hi;
    values[STAT_RMS] = sqrtf(squares / N_FLOAT);
    values[STAT_STD] = sqrtf(m2);
    if (m2 <= VARIANCE_FLOOR) {
        values[STAT_SKEWNESS] = 0.0f;
        values[STAT_KURTOSIS] = 0.0f;
    } else {
        values[STAT_SKEWNESS] = m3 / (m2 * sqrtf(m2));
        values[STAT_KURTOSIS] = m4 / (m2 * m2) - 3.0f;
    }
    for (i = 0; i < n_stats; ++i) {
        out[i] = values[stats[i]];
    }
}
"""

_SPECTRAL = """\
typedef struct {
    uint32_t fft_length;    /* L, a power of two */
    uint32_t frames;        /* frames averaged */
    uint32_t frame_length;  /* samples per frame (<= L, zero-padded to L) */
    const float *hann;      /* [frame_length] periodic Hann window */
    const float *cos_table; /* [L / 2] cos(2 pi k / L) */
    const float *sin_table; /* [L / 2] sin(2 pi k / L) */
    float scale;            /* 4 / (frame_length * frames) */
    int32_t filter;         /* 1: y[i] = b0 x[i] + b1 x[i-1] - a1 y[i-1] */
    float b0;
    float b1;
    float a1;
    uint32_t n_bands;
    const uint16_t *bands;  /* [n_bands][2]: bins [start, stop) */
    int32_t log;            /* 1: log10(energy + 1e-10) */
    uint32_t n_peaks;
    float bin_hz;           /* sample_rate / L */
} spectral_config;

static float frame[MAX_FFT_LENGTH];
static float magnitude[MAX_FFT_LENGTH / 2 + 1];

/* In-place iterative radix-2 decimation-in-time FFT of n complex values (re, im interleaved);
 * twiddle W_n^k = cos_table[k * L / n] - i sin_table[k * L / n]. */
static void fft(float *z, uint32_t n, const spectral_config *cfg)
{
    uint32_t i;
    uint32_t j = 0;
    uint32_t len;
    for (i = 1; i < n; ++i) {
        uint32_t bit = n >> 1;
        while (j & bit) {
            j ^= bit;
            bit >>= 1;
        }
        j ^= bit;
        if (i < j) {
            float re = z[2 * i];
            float im = z[2 * i + 1];
            z[2 * i] = z[2 * j];
            z[2 * i + 1] = z[2 * j + 1];
            z[2 * j] = re;
            z[2 * j + 1] = im;
        }
    }
    for (len = 2; len <= n; len <<= 1) {
        uint32_t half = len >> 1;
        uint32_t step = cfg->fft_length / len;
        uint32_t start;
        uint32_t k;
        for (start = 0; start < n; start += len) {
            for (k = 0; k < half; ++k) {
                float wr = cfg->cos_table[k * step];
                float wi = cfg->sin_table[k * step];
                float *a = z + 2 * (start + k);
                float *b = a + 2 * half;
                float tr = b[0] * wr + b[1] * wi;
                float ti = b[1] * wr - b[0] * wi;
                b[0] = a[0] - tr;
                b[1] = a[1] - ti;
                a[0] = a[0] + tr;
                a[1] = a[1] + ti;
            }
        }
    }
}

/* Adds |rfft(frame)| (L/2 + 1 bins) to magnitude[]: the L real samples are FFT'd as L/2
 * complex ones, Z = E + iO, then X[k] = E[k] + W_L^k O[k]. */
static void add_rfft_magnitude(const spectral_config *cfg)
{
    uint32_t n = cfg->fft_length / 2;
    uint32_t k;
    fft(frame, n, cfg);
    magnitude[0] += fabsf(frame[0] + frame[1]);
    magnitude[n] += fabsf(frame[0] - frame[1]);
    for (k = 1; k < n; ++k) {
        float ar = frame[2 * k];
        float ai = frame[2 * k + 1];
        float cr = frame[2 * (n - k)];
        float ci = frame[2 * (n - k) + 1];
        float er = 0.5f * (ar + cr);
        float ei = 0.5f * (ai - ci);
        float or_ = 0.5f * (ai + ci);
        float oi = 0.5f * (cr - ar);
        float wr = cfg->cos_table[k];
        float wi = cfg->sin_table[k];
        float xr = er + (wr * or_ + wi * oi);
        float xi = ei + (wr * oi - wi * or_);
        magnitude[k] += sqrtf(xr * xr + xi * xi);
    }
}

/* SpectralBlock on one axis (x[i * N_AXES]): n_bands band energies, then n_peaks
 * (frequency, magnitude) pairs. */
static void spectral_block(const float *x, const spectral_config *cfg, float *out)
{
    uint32_t bins = cfg->fft_length / 2 + 1;
    uint32_t inner_end = cfg->fft_length / 2; /* peaks: bins 1 .. L/2 - 1 */
    float mean = shifted_mean(x);
    float prev_x = 0.0f;
    float prev_y = 0.0f;
    float top = 0.0f;
    float floor_value;
    float taken = 0.0f;
    uint32_t taken_bin = 0;
    uint32_t f;
    uint32_t m;
    uint32_t k;
    uint32_t p;
    for (k = 0; k < bins; ++k) {
        magnitude[k] = 0.0f;
    }
    for (f = 0; f < cfg->frames; ++f) {
        for (m = 0; m < cfg->frame_length; ++m) {
            float v = *x - mean;
            x += N_AXES;
            if (cfg->filter) {
                float y = cfg->b0 * v + cfg->b1 * prev_x - cfg->a1 * prev_y;
                prev_x = v;
                prev_y = y;
                v = y;
            }
            frame[m] = v * cfg->hann[m];
        }
        for (; m < cfg->fft_length; ++m) {
            frame[m] = 0.0f;
        }
        add_rfft_magnitude(cfg);
    }
    for (k = 0; k < bins; ++k) {
        magnitude[k] = magnitude[k] * cfg->scale;
    }
    for (p = 0; p < cfg->n_bands; ++p) {
        float energy = 0.0f;
        for (k = cfg->bands[2 * p]; k < cfg->bands[2 * p + 1]; ++k) {
            energy += magnitude[k] * magnitude[k];
        }
        *out++ = cfg->log ? log10f(energy + LOG_FLOOR) : energy;
    }
    for (k = 1; k < inner_end; ++k) {
        if (magnitude[k] > top) {
            top = magnitude[k];
        }
    }
    floor_value = PEAK_FLOOR * top;
    /* The largest peaks first, lower bin first on a tie: each round takes the best peak
     * that comes after the previous one in that order. */
    for (p = 0; p < cfg->n_peaks; ++p) {
        uint32_t best = 0;
        for (k = 1; k < inner_end; ++k) {
            float v = magnitude[k];
            if (!(v > magnitude[k - 1] && v >= magnitude[k + 1] && v > floor_value)) {
                continue;
            }
            if (p > 0 && !(v < taken || (v == taken && k > taken_bin))) {
                continue;
            }
            if (best == 0 || v > magnitude[best]) {
                best = k;
            }
        }
        if (best == 0) {
            *out++ = 0.0f;
            *out++ = 0.0f;
        } else {
            taken = magnitude[best];
            taken_bin = best;
            *out++ = (float)best * cfg->bin_hz;
            *out++ = taken;
        }
    }
}
"""


def _wrap(text: str, indent: str, width: int = 88) -> list[str]:
    """``text`` broken at spaces into lines of at most ``width`` characters."""
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(indent + line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, indent + line]


def _spectral_tables(
    blocks: list[SpectralBlock], n_samples: int
) -> tuple[list[str], dict[int, str], dict[int, str], int]:
    """(arrays, Hann table by frame length, twiddle suffix by FFT length, const bytes)."""
    arrays: list[str] = []
    hann: dict[int, str] = {}
    twiddle: dict[int, str] = {}
    const_bytes = 0
    for block in blocks:
        length = block.fft_length
        size = n_samples if n_samples <= length else length
        if size not in hann:
            window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(size) / size)).astype(np.float32)
            hann[size] = f"hann_{size}"
            arrays.append(
                c_array(
                    "float",
                    hann[size],
                    floats(window, "Hann window"),
                    per_line=6,
                    comment=f"periodic Hann window of {size} samples",
                )
            )
            const_bytes += 4 * size
        if length not in twiddle:
            angle = 2.0 * np.pi * np.arange(length // 2) / length
            twiddle[length] = str(length)
            comment = f"cos and sin of 2 pi k / {length}, k < {length // 2}"
            arrays.append(
                c_array(
                    "float",
                    f"cos_{length}",
                    floats(np.cos(angle), "twiddle"),
                    per_line=6,
                    comment=comment,
                )
            )
            arrays.append(
                c_array("float", f"sin_{length}", floats(np.sin(angle), "twiddle"), per_line=6)
            )
            const_bytes += 4 * length
    return arrays, hann, twiddle, const_bytes


def features_source(
    pipeline: FeaturePipeline, *, prefix: str, title: str, window: tuple[int, int]
) -> FeatureSource:
    """``features.h`` and ``features.c`` for windows of ``window`` = (samples, axes)."""
    p, m = prefix, prefix.upper()
    n_samples, n_axes = window
    spectral = [b for b in pipeline.blocks if isinstance(b, SpectralBlock)]
    flatten = [b for b in pipeline.blocks if isinstance(b, FlattenBlock)]
    arrays, hann, twiddle, const_bytes = _spectral_tables(spectral, n_samples)
    configs: list[str] = []
    calls: list[str] = []
    layout: list[str] = []
    offset = 0
    for i, block in enumerate(pipeline.blocks):
        names = block.feature_names()
        width = len(names)
        target = f"out + {offset}u + a * {width}u"
        span = f"out[{offset}..{offset + width * n_axes})"
        kind = "flatten" if isinstance(block, FlattenBlock) else "spectral"
        layout.append(f"{span}: block {i} ({kind}), for each axis ({', '.join(pipeline.axes)}):")
        layout.extend(_wrap(", ".join(names), "  "))
        if isinstance(block, FlattenBlock):
            codes = [f"STAT_{s.upper()}" for s in block.stats]
            arrays.append(c_array("uint8_t", f"block_{i}_stats", codes, per_line=4))
            const_bytes += len(codes)
            call = f"flatten_block(window + a, block_{i}_stats, {width}u, {target})"
        else:
            length = block.fft_length
            count, size = (1, n_samples) if n_samples <= length else (n_samples // length, length)
            b0, b1, a1 = block.filter_coefficients()
            bins = [str(v) for pair in block.band_bins() for v in pair]
            arrays.append(
                c_array(
                    "uint16_t",
                    f"block_{i}_bands",
                    bins,
                    per_line=8,
                    comment=f"block {i}: band bins [start, stop)",
                )
            )
            const_bytes += 2 * len(bins) + 80
            scale, bin_hz = c_float(4.0 / (size * count)), c_float(block.sample_rate / length)
            filtered = int(block.filter != "none")
            configs.append(f"""\
static const spectral_config block_{i} = {{
    {length}u, {count}u, {size}u, {hann[size]}, cos_{twiddle[length]}, sin_{twiddle[length]},
    {scale}, {filtered}, {c_float(b0)}, {c_float(b1)}, {c_float(a1)},
    {len(block.band_bins())}u, block_{i}_bands, {int(block.log)}, {block.n_peaks}u, {bin_hz},
}};
""")
            call = f"spectral_block(window + a, &block_{i}, {target})"
        calls.append(f"    for (a = 0; a < N_AXES; ++a) {{\n        {call};\n    }}")
        offset += width * n_axes
    max_length = max((b.fft_length for b in spectral), default=0)
    buffer_bytes = 4 * (max_length + max_length // 2 + 1) if spectral else 0
    code = _COMMON
    if flatten:
        code += "\n" + _FLATTEN
    if spectral:
        code += "\n" + _SPECTRAL
    constants = [
        f"#define N_SAMPLES {n_samples}u",
        f"#define N_AXES {n_axes}u",
        f"#define N_FLOAT {c_float(n_samples)}",
    ]
    if flatten:
        constants.append(f"#define VARIANCE_FLOOR {c_float(VARIANCE_FLOOR)}")
        constants.append(
            "enum { STAT_MEAN, STAT_MIN, STAT_MAX, STAT_RMS, STAT_STD, STAT_SKEWNESS, "
            "STAT_KURTOSIS };"
        )
    if spectral:
        constants += [
            f"#define MAX_FFT_LENGTH {max_length}u",
            f"#define LOG_FLOOR {c_float(LOG_FLOOR)}",
            f"#define PEAK_FLOOR {c_float(PEAK_FLOOR)}",
        ]
    header = f"""\
/*
 * features.h -- {c_comment(title)}: feature blocks generated by edgeloop. Do not edit.
 *
 * {p}_features_compute(window, out) turns one window of {n_samples} samples x {n_axes} axes
 * (row-major float32 [samples][axes]; axes {c_comment(", ".join(pipeline.axes))}) into
 * {m}_FEATURES_COUNT features, as edgeloop's FeaturePipeline.transform does, within its
 * PORT_TOLERANCE (|a - b| <= 1e-4 + 1e-4 |b|; band energies in log10 units):
{chr(10).join(" *   " + c_comment(line) for line in layout)}
 *
 * Static buffers: {m}_FEATURES_BUFFER_BYTES bytes; no heap; not reentrant.
 * Build: C99 with libm, -ffp-contract=off, no -ffast-math (see model.h).
 */
#ifndef {m}_FEATURES_H
#define {m}_FEATURES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

{status_codes(p)}
#define {m}_FEATURES_WINDOW_SAMPLES {n_samples}
#define {m}_FEATURES_WINDOW_AXES {n_axes}
#define {m}_FEATURES_COUNT {feature_count(pipeline)}
#define {m}_FEATURES_BUFFER_BYTES {buffer_bytes}

/* Computes the features of window[{m}_FEATURES_WINDOW_SAMPLES * {m}_FEATURES_WINDOW_AXES]
 * into out[{m}_FEATURES_COUNT]. Returns {m}_OK, {m}_ERR_NULL, or {m}_ERR_INPUT when a
 * sample is NaN or infinite. */
int {p}_features_compute(const float *window, float *out);

#ifdef __cplusplus
}}
#endif

#endif /* {m}_FEATURES_H */
"""
    source = f"""\
/* features.c -- {c_comment(title)}: feature blocks, generated by edgeloop. Do not edit.
 * See features.h. */
#if defined(__FAST_MATH__)
#error "features.c needs IEEE float32 arithmetic (isfinite, NaN): build without -ffast-math"
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "features.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

{chr(10).join(constants)}

{chr(10).join(arrays)}
{code}
{chr(10).join(configs)}
int {p}_features_compute(const float *window, float *out)
{{
    uint32_t a;
    if (window == NULL || out == NULL) {{
        return {m}_ERR_NULL;
    }}
    for (a = 0; a < N_SAMPLES * N_AXES; ++a) {{
        if (!isfinite(window[a])) {{
            return {m}_ERR_INPUT;
        }}
    }}
{chr(10).join(calls)}
    return {m}_OK;
}}
"""
    return FeatureSource(header, source, buffer_bytes, const_bytes)
