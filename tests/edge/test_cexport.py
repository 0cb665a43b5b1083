"""The C export: the generated library, compiled with the host gcc, is bit-exact with the int8
numpy runtime (quantization, network, dequantized scores, classes), its feature blocks agree
with FeaturePipeline.transform within PORT_TOLERANCE, it uses no heap and keeps constants in
read-only sections, the Arduino layout builds (and its sketch runs against a stub), and the
plain layout builds for a Cortex-M4 without warnings."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edgeloop.edge._cexport import CExport, export_c
from edgeloop.edge.runtime import (
    Conv1D,
    Dense,
    Flatten,
    MaxPool1D,
    QuantizedModel,
    QuantParams,
    requant_params,
)
from edgeloop.errors import ValidationFailed
from edgeloop.sim import simulate_fleet
from edgeloop.train.features import PORT_TOLERANCE, FeaturePipeline, FlattenBlock, SpectralBlock

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a host gcc"),
]

F32 = npt.NDArray[np.float32]
WARNINGS = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion", "-Wdouble-promotion"]
WARNINGS += ["-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes"]
CFLAGS = ["-std=c99", "-O2", "-ffp-contract=off", *WARNINGS]
ARM = ["-std=c99", "-Os", "-mthumb", "-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
WINDOW = (200, 3)
ERR_INPUT = -2


# ---- models built from random int8 weights ----------------------------------------------


def _layer(
    rng: np.random.Generator,
    kind: type[Dense] | type[Conv1D],
    shape: tuple[int, ...],
    input_scale: float,
    output: QuantParams,
    relu: bool,
    weight_scales: F32,
    **extra: Any,
) -> Dense | Conv1D:
    weights = rng.integers(-127, 128, shape).astype(np.int8)
    multiplier, shift = requant_params(input_scale, weight_scales, output.scale)
    bias = rng.integers(-3000, 3000, shape[0]).astype(np.int32)
    return kind(weights, bias, multiplier, shift, weight_scales, output, relu=relu, **extra)


def mlp() -> QuantizedModel:
    """64 -> 32 relu -> 10; input zero point 127, ReLU clamping at zero point -20, channels
    with multipliers > 1 (shift > 0), an input with inv_std 0."""
    rng = np.random.default_rng(1)
    inp, hidden, out = QuantParams(0.05, 127), QuantParams(0.08, -20), QuantParams(0.3, -100)
    scales = rng.uniform(0.001, 0.02, 32).astype(np.float32)
    scales[:3] = [3.0, 12.0, 40.0]  # real multipliers 1.9, 7.5, 25
    inv_std = rng.uniform(0.5, 2.0, 64).astype(np.float32)
    inv_std[5] = 0.0  # a constant feature
    return QuantizedModel(
        input_shape=(64,),
        mean=rng.normal(0, 3, 64).astype(np.float32),
        inv_std=inv_std,
        input=inp,
        layers=(
            _layer(rng, Dense, (32, 64), inp.scale, hidden, True, scales),
            _layer(rng, Dense, (10, 32), hidden.scale, out, False, np.full(10, 0.01, np.float32)),
        ),
        labels=tuple(f"class_{i}" for i in range(10)),
    )


def logit() -> QuantizedModel:
    """20 -> 8 relu -> 1 logit; input zero point -128, one standardisation for every input,
    biases at the int32 limits (64-bit accumulators, saturation)."""
    rng = np.random.default_rng(2)
    inp, hidden, out = QuantParams(0.04, -128), QuantParams(0.2, -128), QuantParams(0.05, 3)
    first = _layer(rng, Dense, (8, 20), inp.scale, hidden, True, np.full(8, 0.01, np.float32))
    first.bias[:2] = [2**31 - 5, -(2**31)]
    second = _layer(rng, Dense, (1, 8), hidden.scale, out, False, np.array([0.02]))
    second.weights[:] = second.weights // 32  # small: multiplier 0.08, a right shift of 3
    second.bias[0] = 1_200  # logits on both sides of 0
    return QuantizedModel(
        input_shape=(20,),
        mean=np.full(20, 0.5, np.float32),
        inv_std=np.full(20, 2.0, np.float32),
        input=inp,
        layers=(first, second),
        labels=("normal", "fault"),
    )


def cnn() -> QuantizedModel:
    """(32, 3) -> conv1d 6x5/2 relu -> maxpool 3/2 -> flatten -> dense 4; per-channel
    standardisation, ReLU at zero point -60, output zero point 127, labels that need escaping
    in C."""
    rng = np.random.default_rng(3)
    inp, conv_out, out = QuantParams(0.03, 0), QuantParams(0.06, -60), QuantParams(0.25, 127)
    conv_scales = rng.uniform(0.002, 0.03, 6).astype(np.float32)
    conv_scales[0] = 5.0  # multiplier 2.5
    return QuantizedModel(
        input_shape=(32, 3),
        mean=np.tile(rng.normal(size=3).astype(np.float32), (32, 1)),
        inv_std=np.tile(rng.uniform(0.5, 2, 3).astype(np.float32), (32, 1)),
        input=inp,
        layers=(
            _layer(rng, Conv1D, (6, 5, 3), inp.scale, conv_out, True, conv_scales, stride=2),
            MaxPool1D(3, 2),
            Flatten(),
            _layer(rng, Dense, (4, 36), conv_out.scale, out, False, np.full(4, 0.01, np.float32)),
        ),
        labels=('idle "A"', "run??=", "naïve\\", "*/ end"),
    )


def pipeline() -> FeaturePipeline:
    return FeaturePipeline(
        blocks=(
            FlattenBlock(),
            SpectralBlock(sample_rate=1000.0, fft_length=64, filter="lowpass", filter_cutoff=200.0),
            SpectralBlock(
                sample_rate=1000.0,
                fft_length=256,
                bands=((10.0, 50.0), (50.0, 200.0), (200.0, 500.0)),
                n_peaks=2,
                filter="highpass",
                filter_cutoff=5.0,
            ),
            FlattenBlock(stats=("kurtosis", "rms", "min")),
        ),
        axes=("x", "y", "z"),
    )


@functools.cache
def windows() -> F32:
    """Simulated accelerometer windows, sines with noise and offsets, and a constant one."""
    recordings = simulate_fleet(machines=2, recordings_per_condition=1, seconds=1.0, seed=4)
    sim = [r.signal[i : i + WINDOW[0]] for r in recordings for i in range(0, 1000, WINDOW[0])]
    rng = np.random.default_rng(5)
    t = np.arange(WINDOW[0])[:, None] / 1000.0
    freqs, offsets = rng.uniform(5, 450, (20, 1, 3)), rng.uniform(-20, 20, (20, 1, 3))
    sines = offsets + np.sin(2 * np.pi * freqs * t) + rng.normal(0, 0.1, (20, *WINDOW))
    constant = np.full((1, *WINDOW), 0.75)
    return np.concatenate([np.stack(sim), sines, constant]).astype(np.float32)


@functools.cache
def feature_model() -> QuantizedModel:
    rng = np.random.default_rng(6)
    feats = pipeline().transform(windows())
    n = feats.shape[1]
    inp, hidden, out = QuantParams(0.05, -10), QuantParams(0.1, -128), QuantParams(0.2, 0)
    return QuantizedModel(
        input_shape=(n,),
        mean=feats.mean(axis=0),
        inv_std=(1.0 / (feats.std(axis=0) + 1e-3)).astype(np.float32),
        input=inp,
        layers=(
            _layer(rng, Dense, (16, n), inp.scale, hidden, True, np.full(16, 0.01, np.float32)),
            _layer(rng, Dense, (3, 16), hidden.scale, out, False, np.full(3, 0.01, np.float32)),
        ),
        labels=("normal", "imbalance", "bearing_fault"),
    )


MODELS: dict[str, Callable[[], QuantizedModel]] = {"mlp": mlp, "logit": logit, "cnn": cnn}


def float_inputs(model: QuantizedModel, n: int = 240) -> F32:
    """Typical, saturating (|z| up to ~1e30) and near-tie inputs (z * inv_scale ~ k + 0.5)."""
    rng = np.random.default_rng(7)
    shape, scale = model.input_shape, np.float32(model.input.scale)
    z = rng.normal(0, 1.5, (n, *shape)).astype(np.float32)
    z[:30] *= 40.0
    z[30:34] = np.reshape([3e30, -3e30, 1e6, -1e6], (4,) + (1,) * len(shape))
    ties = (rng.integers(-140, 140, (60, *shape)) + 0.5).astype(np.float32) * scale
    z[-60:] = ties
    safe = np.where(model.inv_std == 0, np.float32(1), model.inv_std)
    return (model.mean + z / safe).astype(np.float32)


# ---- building and running the generated C -----------------------------------------------

HARNESS = """\
#include <stdio.h>
#include <string.h>
#include "model.h"
#if P_MODEL_HAS_FEATURES
#include "features.h"
#define N_FEATURES P_FEATURES_COUNT
#else
#define N_FEATURES P_MODEL_INT8_INPUT_SIZE
#endif

static float x[P_MODEL_INPUT_SIZE];
static float features[N_FEATURES];
static int8_t q[P_MODEL_INT8_INPUT_SIZE];
static int8_t y[P_MODEL_OUTPUTS];
static float scores[P_MODEL_OUTPUTS];

/* harness floats.f32 int8s.i8 out.bin: per float record the statuses of features, quantize,
 * predict_int8, predict and predict_class, then features, q, y, scores; then per int8 record
 * the status and output of predict_int8. Prints the labels -1 .. CLASSES. */
int main(int argc, char **argv)
{
    FILE *floats;
    FILE *int8s;
    FILE *out;
    int32_t status[5];
    if (argc != 4) {
        return 2;
    }
    floats = fopen(argv[1], "rb");
    int8s = fopen(argv[2], "rb");
    out = fopen(argv[3], "wb");
    if (floats == NULL || int8s == NULL || out == NULL) {
        return 2;
    }
    status[0] = p_model_init();
    fwrite(status, sizeof status[0], 1, out);
    while (fread(x, sizeof x[0], P_MODEL_INPUT_SIZE, floats) == P_MODEL_INPUT_SIZE) {
#if P_MODEL_HAS_FEATURES
        status[0] = p_features_compute(x, features);
#else
        memcpy(features, x, sizeof features);
        status[0] = 0;
#endif
        status[1] = p_model_quantize_input(features, q);
        status[2] = p_model_predict_int8(q, y);
        status[3] = p_model_predict(x, scores);
        status[4] = p_model_predict_class(x);
        fwrite(status, sizeof status[0], 5, out);
        fwrite(features, sizeof features[0], N_FEATURES, out);
        fwrite(q, 1, sizeof q, out);
        fwrite(y, 1, sizeof y, out);
        fwrite(scores, sizeof scores[0], P_MODEL_OUTPUTS, out);
    }
    while (fread(q, 1, sizeof q, int8s) == sizeof q) {
        status[0] = p_model_predict_int8(q, y);
        fwrite(status, sizeof status[0], 1, out);
        fwrite(y, 1, sizeof y, out);
    }
    for (status[0] = -1; status[0] <= P_MODEL_CLASSES; ++status[0]) {
        const char *label = p_model_label((int)status[0]);
        puts(label != NULL ? label : "(null)");
    }
    return fclose(out) == 0 ? 0 : 3;
}
"""


def run(*args: str | Path, cwd: Path | None = None) -> str:
    """Run a command; its stdout and stderr (UTF-8)."""
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, check=False)
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode == 0, f"{' '.join(map(str, args))}\n{output}"
    return output


@dataclasses.dataclass(frozen=True)
class Built:
    model: QuantizedModel
    export: CExport
    directory: Path
    harness: Path
    n_features: int

    def run(self, floats: F32, int8s: npt.NDArray[np.int8]) -> tuple[int, Any, Any]:
        """(init status, records of the float inputs, records of the int8 inputs)."""
        (self.directory / "floats.f32").write_bytes(np.ascontiguousarray(floats).tobytes())
        (self.directory / "int8s.i8").write_bytes(np.ascontiguousarray(int8s).tobytes())
        labels = run(self.harness, "floats.f32", "int8s.i8", "out.bin", cwd=self.directory)
        expected = ["(null)", *self.model.labels, "(null)"]
        assert labels == "\n".join(expected) + "\n"
        data = (self.directory / "out.bin").read_bytes()
        n_in, n_out = int(np.prod(self.model.input_shape)), self.model.shapes()[-1][0]
        record = np.dtype(
            [
                ("status", "<i4", 5),
                ("features", "<f4", self.n_features),
                ("q", "i1", n_in),
                ("y", "i1", n_out),
                ("scores", "<f4", n_out),
            ]
        )
        raw = np.dtype([("status", "<i4"), ("y", "i1", n_out)])
        init = int(np.frombuffer(data[:4], "<i4")[0])
        size = record.itemsize * len(floats)
        return (
            init,
            np.frombuffer(data[4 : 4 + size], record),
            np.frombuffer(data[4 + size :], raw),
        )


def build(
    directory: Path, model: QuantizedModel, features: FeaturePipeline | None = None, **kw: Any
) -> Built:
    prefix = kw.setdefault("prefix", "edgeloop")
    export = export_c(model, features, **kw)
    export.write_to(directory)
    harness = HARNESS.replace("P_", prefix.upper() + "_").replace("p_", prefix + "_")
    (directory / "harness.c").write_text(harness)
    sources = ["model.c", "harness.c"] + (["features.c"] if features else [])
    for source in sources[:1] + sources[2:]:
        run("gcc", *CFLAGS, "-c", source, cwd=directory)
    run("gcc", *CFLAGS, "-o", "harness", *sources, "-lm", cwd=directory)
    n_features = len(features.feature_names()) if features else int(np.prod(model.input_shape))
    return Built(model, export, directory, directory / "harness", n_features)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Built]:
    """Factory: the compiled export of a model of MODELS (or "features"), built once."""

    @functools.cache
    def factory(name: str) -> Built:
        directory = tmp_path_factory.mktemp(name)
        if name == "features":
            return build(directory, feature_model(), pipeline(), window=WINDOW, prefix="pump")
        return build(directory, MODELS[name]())

    return factory


# ---- bit-exact int8 ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_int8_outputs_are_bit_exact_with_the_runtime(
    built: Callable[[str], Built], name: str
) -> None:
    b = built(name)
    model = b.model
    x = float_inputs(model)
    rng = np.random.default_rng(8)
    raw = rng.integers(-128, 128, (200, *model.input_shape)).astype(np.int8)
    raw[0], raw[1] = -128, 127
    nan = np.full((1, *model.input_shape), np.nan, np.float32)
    init, records, raw_records = b.run(np.concatenate([x, nan]), raw)
    assert init == 0  # the self-test agrees with the reference

    with np.errstate(over="ignore"):
        q = model.quantize_input(x)
    assert {-128, 127} <= set(np.unique(q).tolist())  # the inputs saturate both ways
    expected = model.run_int8(q)
    assert len(np.unique(expected)) > 20  # the outputs spread: every rounding path is taken
    good = records[:-1]
    assert (good["status"][:, :4] == 0).all()
    np.testing.assert_array_equal(good["q"].reshape(q.shape), q)
    np.testing.assert_array_equal(good["y"], expected)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(good["scores"], model.scores(x))
        np.testing.assert_array_equal(good["status"][:, 4], model.predict_index(x))
    assert records[-1]["status"][1:].tolist() == [ERR_INPUT, 0, ERR_INPUT, ERR_INPUT]

    assert (raw_records["status"] == 0).all()
    np.testing.assert_array_equal(raw_records["y"], model.run_int8(raw))


def test_models_cover_the_arithmetic_edge_cases() -> None:
    """What the bit-exact test relies on: multipliers > 1, extreme zero points, int32 limits."""
    for model in (mlp(), cnn()):
        first = model.layers[0]
        assert isinstance(first, Dense | Conv1D) and first.shift.max() > 0
    assert {mlp().input.zero_point, logit().input.zero_point} == {127, -128}
    assert cnn().output.zero_point == 127
    first = logit().layers[0]
    assert isinstance(first, Dense)
    assert first.bias.min() == -(2**31) and first.bias.max() > 2**31 - 10
    assert "dot_layer_acc64" in export_c(logit()).files["model.c"].decode()


def test_self_test_reports_a_build_that_computes_differently(
    built: Callable[[str], Built], tmp_path: Path
) -> None:
    b = built("mlp")
    source = (b.directory / "model.c").read_text()
    assert "#define SELFTEST_HASH 0x" in source
    broken = source.replace("#define INPUT_INV_SCALE ", "#define INPUT_INV_SCALE 1.0001f * ")
    (tmp_path / "model.c").write_text(broken)
    for name in ("model.h", "harness.c"):
        shutil.copy(b.directory / name, tmp_path / name)
    run("gcc", *CFLAGS, "-o", "harness", "model.c", "harness.c", "-lm", cwd=tmp_path)
    broken_build = dataclasses.replace(b, directory=tmp_path, harness=tmp_path / "harness")
    init, _, _ = broken_build.run(float_inputs(b.model)[:1], np.zeros((0, 64), np.int8))
    assert init == -3


def test_fast_math_builds_are_refused(built: Callable[[str], Built]) -> None:
    b = built("mlp")
    done = subprocess.run(
        ["gcc", "-std=c99", "-ffast-math", "-c", "model.c", "-o", "/dev/null"],
        cwd=b.directory,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and "-ffast-math" in done.stderr


# ---- features ---------------------------------------------------------------------------


def test_feature_blocks_match_the_pipeline_within_port_tolerance(
    built: Callable[[str], Built],
) -> None:
    b = built("features")
    model, x = b.model, windows()
    bad = np.stack([x[0], x[0]])
    bad[0, 17, 1], bad[1, 3, 2] = np.nan, np.inf
    init, records, _ = b.run(np.concatenate([x, bad]), np.zeros((0, model.input_shape[0]), np.int8))
    assert init == 0
    good, failed = records[: len(x)], records[len(x) :]
    assert (good["status"][:, :4] == 0).all() and (good["status"][:, 4] >= 0).all()

    expected = pipeline().transform(x)
    features = good["features"]
    tol = PORT_TOLERANCE["atol"] + PORT_TOLERANCE["rtol"] * np.abs(expected)
    worst = np.unravel_index(np.argmax(np.abs(features - expected) - tol), expected.shape)
    assert (np.abs(features - expected) <= tol).all(), (
        f"window {worst[0]}, {pipeline().feature_names()[worst[1]]}: "
        f"C {features[worst]!r} vs numpy {expected[worst]!r}"
    )
    # The network downstream is bit-exact on the features the C computed.
    np.testing.assert_array_equal(good["q"], model.quantize_input(features))
    np.testing.assert_array_equal(good["y"], model.run_int8(good["q"]))
    np.testing.assert_array_equal(good["scores"], model.scores(features))
    np.testing.assert_array_equal(good["status"][:, 4], model.predict_index(features))
    assert (failed["status"][:, [0, 3, 4]] == ERR_INPUT).all()


def test_feature_export_sizes_and_operations(built: Callable[[str], Built]) -> None:
    b = built("features")
    e, n = b.export, b.model.input_shape[0]
    assert e.arena_bytes == b.model.arena_bytes()
    assert e.feature_buffer_bytes == 4 * (256 + 129) + 4 * n  # FFT buffers + feature vector
    counts = pipeline().operation_counts(WINDOW[0])
    assert e.operations == b.model.operations() | {f"features.{k}": v for k, v in counts.items()}
    header = e.files["features.h"].decode()
    assert f"#define PUMP_FEATURES_COUNT {n}\n" in header
    assert "int pump_features_compute(const float *window, float *out);" in header
    model_h = e.files["model.h"].decode()
    assert "#define PUMP_MODEL_INPUT_SIZE 600 " in model_h
    assert "#define PUMP_MODEL_WINDOW_SAMPLES 200\n" in model_h


# ---- the object files ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mlp", "cnn", "features"])
def test_no_heap_and_constants_in_read_only_sections(
    built: Callable[[str], Built], name: str
) -> None:
    b = built(name)
    objects = ["model.o"] + (["features.o"] if name == "features" else [])
    symbols: dict[str, tuple[str, int]] = {}
    for line in run("nm", "-S", *objects, cwd=b.directory).splitlines():
        parts = line.split()
        if len(parts) == 2:  # undefined: "U name"
            symbols[parts[1]] = (parts[0], 0)
        elif len(parts) == 4:
            symbols[parts[3]] = (parts[2], int(parts[1], 16))
    undefined = {s for s, (kind, _) in symbols.items() if kind == "U"}
    assert not undefined & {"malloc", "calloc", "realloc", "free", "aligned_alloc"}, undefined
    allowed = {"floorf", "sqrtf", "log10f", "fabsf", "memcpy", "memset", "pump_features_compute"}
    assert {s for s in undefined if not s.startswith("__")} <= allowed, undefined
    assert symbols["arena"] == ("b", b.model.arena_bytes())
    if name == "cnn":  # per-channel mean and inv_std are stored once, not per time step
        assert symbols["input_mean"] == ("r", 4 * 3)
    constants = [s for s in symbols if s.endswith(("_weights", "_bias", "_multiplier"))]
    constants += ["input_mean", "input_inv_std", "label_text"]
    if name == "features":
        constants += ["hann_64", "hann_200", "cos_256", "sin_256", "block_1_bands"]
    assert len(constants) >= 6
    for symbol in constants:
        if symbol in symbols:  # a tiny array may be folded into the code
            assert symbols[symbol][0] == "r", (symbol, symbols[symbol])
    big = [s for s in constants if s.endswith("_weights") and symbols[s][1] >= 64]
    assert big and all(symbols[s][0] == "r" for s in big)
    public = {s for s, (kind, _) in symbols.items() if kind == "T"}
    prefix = "pump" if name == "features" else "edgeloop"
    assert public and all(s.startswith(f"{prefix}_") for s in public)


# ---- layouts and targets ----------------------------------------------------------------

ARDUINO_STUB = """\
/* A host stand-in for Arduino.h, enough to build and run the example sketch. */
#include <math.h>
#include <stdio.h>
struct SerialPort {
    void begin(long) {}
    void print(const char *s) { fputs(s != NULL ? s : "(null)", stdout); }
    void print(int v) { printf("%d", v); }
    void print(unsigned long v) { printf("%lu", v); }
    void print(float v, int digits) { printf("%.*f", digits, (double)v); }
    void println(const char *s) { print(s); putchar('\\n'); }
    void println(int v) { print(v); putchar('\\n'); }
};
static SerialPort Serial;
static unsigned long micros() { return 0; }
static void delay(unsigned long) {}
void setup();
void loop();
int main() { setup(); loop(); loop(); return 0; }
"""


def test_arduino_layout_builds_and_its_sketch_runs(tmp_path: Path) -> None:
    model = cnn()
    export = export_c(model, layout="arduino", library_name="PumpMonitor", prefix="pm")
    assert sorted(export.files) == [
        "README.md",
        "examples/PumpMonitor_infer/PumpMonitor_infer.ino",
        "library.properties",
        "src/PumpMonitor.h",
        "src/model.c",
        "src/model.h",
    ]
    properties = export.files["library.properties"].decode()
    assert "name=PumpMonitor\n" in properties and "includes=PumpMonitor.h\n" in properties
    readme = export.files["README.md"].decode()
    assert "int pm_model_predict(const float *input, float *scores);" in readme
    assert "-ffp-contract=off" in readme and str(model.arena_bytes()) in readme
    export.write_to(tmp_path)
    src = tmp_path / "src"
    run("gcc", *CFLAGS, "-c", "model.c", cwd=src)
    (tmp_path / "Arduino.h").write_text(ARDUINO_STUB)
    sketch = tmp_path / "examples/PumpMonitor_infer/PumpMonitor_infer.ino"
    cxx = ["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-include", "Arduino.h"]
    if shutil.which("g++") is None:
        pytest.skip("needs a host g++ to build the example sketch")
    run(
        *cxx,
        "-I",
        src,
        "-x",
        "c++",
        sketch,
        "-x",
        "none",
        src / "model.o",
        "-lm",
        "-o",
        "app",
        cwd=tmp_path,
    )
    output = run(tmp_path / "app")
    assert "PumpMonitor self-test: ok" in output
    assert output.count(" us\n") == 2 and any(label in output for label in model.labels)


def test_arduino_layout_with_features(tmp_path: Path) -> None:
    export = export_c(feature_model(), pipeline(), window=WINDOW, layout="arduino")
    names = set(export.files)
    assert {"src/features.h", "src/features.c", "src/edgeloop_model.h"} <= names
    assert '#include "features.h"' in export.files["src/edgeloop_model.h"].decode()
    export.write_to(tmp_path)
    run("gcc", *CFLAGS, "-c", "model.c", "features.c", cwd=tmp_path / "src")


@pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is not on PATH"
)
@pytest.mark.parametrize("name", ["cnn", "features"])
def test_plain_layout_compiles_for_cortex_m4_without_warnings(
    built: Callable[[str], Built], name: str
) -> None:
    b = built(name)
    sources = ["model.c"] + (["features.c"] if name == "features" else [])
    output = run(
        "arm-none-eabi-gcc", *ARM, *WARNINGS, "-ffp-contract=off", "-c", *sources, cwd=b.directory
    )
    assert "warning" not in output


# ---- the API surface --------------------------------------------------------------------


def test_export_is_deterministic_and_documented() -> None:
    first, second = export_c(mlp()), export_c(mlp())
    assert first == second
    assert sorted(first.files) == ["model.c", "model.h"]
    assert first.arena_bytes == mlp().arena_bytes() == 96
    assert first.feature_buffer_bytes == 0 and first.operations == mlp().operations()
    header = first.files["model.h"].decode()
    for text in (
        "-ffp-contract=off",
        "int edgeloop_model_init(void);",
        "int edgeloop_model_predict(const float *input, float *scores);",
        "int edgeloop_model_predict_int8(const int8_t *input, int8_t *output);",
        "int edgeloop_model_predict_class(const float *input);",
        "const char *edgeloop_model_label(int i);",
        "#define EDGELOOP_MODEL_ARENA_SIZE 96 ",
        "#define EDGELOOP_MODEL_OUTPUTS 10 ",
        "#define EDGELOOP_ERR_NULL (-1)",
    ):
        assert text in header
    assert "edgeloop_model_predict_class" in first.api
    source = first.files["model.c"].decode()
    assert "static int8_t arena[EDGELOOP_MODEL_ARENA_SIZE];" in source
    assert "malloc" not in source and "static const int8_t l0_weights[2048]" in source


def no_layers() -> QuantizedModel:
    one = np.ones(2, np.float32)
    return QuantizedModel((2,), one, one, QuantParams(0.1, 0), (), ("a", "b"))


def _replace_layer(model: QuantizedModel, **changes: Any) -> QuantizedModel:
    first = dataclasses.replace(model.layers[0], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(model, layers=(first, *model.layers[1:]))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: export_c(feature_model(), pipeline()), "window"),
        (lambda: export_c(feature_model(), pipeline(), window=(200, 2)), "axes"),
        (lambda: export_c(mlp(), pipeline(), window=WINDOW), "features but the model"),
        (lambda: export_c(mlp(), window=(8, 4)), "input_shape"),
        (lambda: export_c(cnn(), window=(3, 32)), "input_shape"),
        (lambda: export_c(mlp(), window=(0, 64)), "window"),
        (lambda: export_c(mlp(), prefix="9lives"), "prefix"),
        (lambda: export_c(mlp(), prefix="a-b"), "prefix"),
        (lambda: export_c(mlp(), library_name="my lib"), "library_name"),
        (lambda: export_c(mlp(), layout="arduino", library_name="model"), "clash"),
        (lambda: export_c(mlp(), "features", window=(8, 8)), "FeaturePipeline"),  # type: ignore[arg-type]
        (lambda: export_c(mlp(), layout="zip"), "layout"),  # type: ignore[arg-type]
        (lambda: export_c(no_layers()), "layers"),
    ],
)
def test_exports_that_cannot_work_are_refused(make: Callable[[], object], match: str) -> None:
    with pytest.raises(ValidationFailed, match=match):
        make()


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"shift": np.full(32, 31, np.int32)}, "shifts"),
        ({"bias": np.zeros(3, np.int32)}, "one value per output channel"),
    ],
)
def test_models_the_c_code_could_not_reproduce_cannot_be_built(
    changes: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        _replace_layer(mlp(), **changes)
