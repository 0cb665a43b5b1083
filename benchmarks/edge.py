"""Edge benchmark: edgeloop's C export against emlearn's, same trained models, Cortex-M4 and host.

Two scikit-learn models are trained once per data set, in ``.venv``, and both tools export
exactly those fitted models as C (the pickles go to emlearn's venv ``.peers/emlearn``, built
on first use by ``_peers.py`` with edgeloop's numpy and scikit-learn pins, so they unpickle
unchanged there):

* MLP: ``Pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), random_state=0))``
  (one ReLU layer of 32 units, softmax output; 64-32-10 = 2,410 weights and biases on digits,
  63-32-4 = 2,180 on vibration; scikit-learn's default 200 iterations, a ConvergenceWarning is
  recorded, not raised; ``random_state`` is ``--seed``, 0 by default, for both models);
* forest: ``RandomForestClassifier(n_estimators=10, max_depth=8, random_state=0)`` (node counts
  are in the JSON).

Data sets:

* digits: scikit-learn's bundled ``load_digits`` (1,797 images of 8 x 8 pixels, 64 features
  0-16, 10 classes), split 75 / 25 stratified (``train_test_split``, ``random_state=--seed``);
* vibration: ``edgeloop.sim.simulate_fleet`` (``--machines`` 12 machines x 4 conditions x
  ``--recordings`` 10 recordings of 2 s at 1 kHz, seed ``--seed``), cut into 500 ms windows
  every 250 ms (``make_windows``), features by ``edgeloop.sim.steps.vibration_features``:
  ``FeaturePipeline(FlattenBlock, SpectralBlock(fft 256, 8 bands))`` on 3 axes = 63 features,
  split by machine (a quarter of the machines are test machines, never seen in training).
  ``--quick``: 4 machines x 4 recordings (one test machine).

What each tool exports:

* edgeloop: the MLP as int8 (``edgeloop.edge._quantize.quantize``, calibrated on the training
  inputs; the scaler is folded in) through ``export_c``; the forest as int16 comparisons
  (``edgeloop.edge.trees.quantize_trees``) through ``export_trees_c``. Called through
  ``edgeloop_model_predict_class(input)``.
* emlearn: the MLP in float32 with ``emlearn.convert(mlp, method="loadable")`` (its default;
  ``method="inline"`` fails to generate C in 0.23.2: ``save(inference=["inline"])`` raises
  ``ValueError: invalid literal for int() ... 'EmlNetActivationRelu'``). emlearn converts the
  MLP only, so the ``StandardScaler`` runs in C in front of it, in the same translation unit:
  ``static const float`` mean and reciprocal scale (exact float32 literals),
  ``z = (x - mean) * inv_scale`` into a stack buffer, then ``<name>_predict(z, n)``; its
  flash, RAM and time count as emlearn's. Its loadable network picks each layer's activation
  at run time, so the libm functions of all of them are linked (``expf``, ``logf``, ``tanhf``);
  its predict computes the softmax before the argmax. The forest with ``method="inline",
  dtype="float"`` (float thresholds: emlearn's default ``int16_t`` features truncate the
  0.5-step thresholds of digits and the sub-unit features of vibration; ``loadable`` supports
  only ``int16_t``), majority vote (emlearn's default ``leaf_bits``) as the reference row, and,
  for information, ``leaf_bits=8`` (soft voting on 8-bit class proportions, closer to
  scikit-learn's averaging).

Measured for every data set x model x tool, from the same generated C:

1. flash and RAM on a Cortex-M4F: every ``.c`` compiled with ``arm-none-eabi-gcc -std=c99 -Os
   -mthumb -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16 -ffunction-sections
   -fdata-sections -c``, plus a ``main`` that calls predict once on a global input, linked with
   ``-Wl,--gc-sections --specs=nano.specs --specs=nosys.specs -lm`` (newlib-nano). Reported is
   the linked ELF's ``arm-none-eabi-size`` minus that of the same ``main`` without the call
   (start-up code and C library cancel out): flash = text + data, RAM = data + bss. Linking is
   the fairer way: it keeps only what predict reaches (both tools generate functions the
   benchmark never calls) and counts the libm / libgcc code each one pulls in (``floorf``;
   ``expf`` for emlearn's softmax), listed under "libraries". The stack is not included for
   either tool (edgeloop's forest keeps its int16 input and int32 scores there, emlearn's MLP
   its scaled input). The unlinked objects' sizes are in the JSON, for information.
2. accuracy of the C model on the test set: the same sources compiled for this machine
   (``gcc -std=c99 -O2 -ffp-contract=off``) into a harness that reads the test inputs
   (float32, binary), predicts each and writes the class indices (binary); compared with the
   labels. Also reported: agreement with scikit-learn's own predictions, and checks that the
   C equals edgeloop's numpy reference (bit-exact by design) and emlearn's own Python wrapper.
3. host latency per inference: the harness predicts the test set over and over until at least
   ``--min-seconds`` (0.2 s) have passed (``clock_gettime(CLOCK_MONOTONIC)``), one process per
   round; the tools alternate; the median of ``--rounds`` (3) rounds in us per inference.

Training, quantization, conversion and compilation are setup: timed for information only.

Targets, for both data sets: the C model's accuracy of edgeloop >= emlearn's (MLP; forest:
>= both emlearn variants), and for the MLP, edgeloop's flash <= emlearn's (int8 against
float32). Every other figure is reported as measured.

Run::

    .venv/bin/python benchmarks/edge.py             # 12 machines, ~20 s
    .venv/bin/python benchmarks/edge.py --quick     # 4 machines, a quick check (~15 s)
    .venv/bin/python benchmarks/edge.py --check     # exit 1 if a target is missed
    .venv/bin/python benchmarks/edge.py --workdir /tmp/edge   # keep the C, objects, ELFs

Prints two tables and writes ``benchmarks/results/edge.json``. Nothing is cached between runs
except the peer venv. Needs ``gcc``, ``arm-none-eabi-gcc`` and newlib-nano
(``apt-get install gcc gcc-arm-none-eabi libnewlib-arm-none-eabi``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

# _peers and peers/ sit next to this file (on the path when it is run as a script).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import joblib
import numpy as np
import numpy.typing as npt
from rich.console import Console, JustifyMethod
from rich.table import Table

from _peers import PEER_SCRIPTS, PEERS, ensure_peer, run_in_peer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "edge.json"
console = Console(stderr=True)

EMLEARN = PEERS["emlearn"]
ARM_GCC, ARM_SIZE, ARM_NM = "arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm"
HOST_CC = "gcc"
M4_FLAGS = (
    "-std=c99",
    "-Os",
    "-mthumb",
    "-mcpu=cortex-m4",
    "-mfloat-abi=hard",
    "-mfpu=fpv4-sp-d16",
    "-ffunction-sections",
    "-fdata-sections",
)
M4_LINK = ("-Wl,--gc-sections", "--specs=nano.specs", "--specs=nosys.specs")
HOST_FLAGS = ("-std=c99", "-O2", "-ffp-contract=off")
MODELS = ("mlp", "forest")
EMLEARN_NAME = "emlearn_model"  # the C name emlearn's functions and arrays start with
WINDOW_MS, STRIDE_MS, SAMPLE_RATE = 500.0, 250.0, 1000.0

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]


# data ---------------------------------------------------------------------------------------


@dataclass
class Dataset:
    name: str
    X_train: F32
    y_train: npt.NDArray[Any]
    X_test: F32
    y_test: npt.NDArray[Any]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])


def digits_data(seed: int) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X.astype(np.float32), y, test_size=0.25, random_state=seed, stratify=y
    )
    info = {"source": "sklearn.datasets.load_digits", "split": "stratified 75/25"}
    return Dataset("digits", X_train, y_train, X_test, y_test, info)


def vibration_data(machines: int, recordings: int, seconds: float, seed: int) -> Dataset:
    from edgeloop.datasets import WindowSpec, make_windows
    from edgeloop.sim import simulate_fleet, to_table
    from edgeloop.sim.steps import AXES, vibration_features

    fleet = simulate_fleet(
        machines=machines,
        recordings_per_condition=recordings,
        seconds=seconds,
        sample_rate=SAMPLE_RATE,
        seed=seed,
    )
    spec = WindowSpec(length_ms=WINDOW_MS, stride_ms=STRIDE_MS, sample_rate=SAMPLE_RATE)
    windows = make_windows(to_table(fleet), spec, axes=AXES)
    out = vibration_features(windows.table, sample_rate=SAMPLE_RATE, seed=seed)
    test_machines = sorted(
        {str(s).split("/", 1)[0] for s in windows.table.column("sample_id").to_pylist()}
        - {str(g) for g in out["groups_train"]}
    )
    info = {
        "source": "edgeloop.sim.simulate_fleet + make_windows + vibration_features",
        "machines": machines,
        "recordings_per_condition": recordings,
        "seconds": seconds,
        "recordings": len(fleet),
        "windows": windows.table.num_rows,
        "window_ms": WINDOW_MS,
        "stride_ms": STRIDE_MS,
        "test_machines": test_machines,
        "split": "group by machine, test 0.25",
    }
    X_train = np.asarray(out["X_train"], dtype=np.float32)
    X_test = np.asarray(out["X_test"], dtype=np.float32)
    return Dataset("vibration", X_train, out["y_train"], X_test, out["y_test"], info)


# models, and edgeloop's C -------------------------------------------------------------------


def train(ds: Dataset, kind: str, seed: int) -> tuple[Any, dict[str, Any]]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model: Any
    if kind == "mlp":
        mlp = MLPClassifier(hidden_layer_sizes=(32,), random_state=seed)
        model = Pipeline([("scaler", StandardScaler()), ("mlp", mlp)])
    else:
        model = RandomForestClassifier(n_estimators=10, max_depth=8, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(ds.X_train, ds.y_train)
    info: dict[str, Any] = {"converged": not any(w.category is ConvergenceWarning for w in caught)}
    if kind == "mlp":
        net = model.named_steps["mlp"]
        info["parameters"] = int(
            sum(w.size for w in net.coefs_) + sum(b.size for b in net.intercepts_)
        )
        info["iterations"] = int(net.n_iter_)
    else:
        info["nodes"] = int(sum(t.tree_.node_count for t in model.estimators_))
        info["leaves"] = int(sum(t.tree_.n_leaves for t in model.estimators_))
    return model, info


def edgeloop_sources(model: Any, kind: str, ds: Dataset) -> tuple[dict[str, bytes], list[str]]:
    """edgeloop's C for ``model`` and its numpy reference's predicted labels on the test set."""
    if kind == "mlp":
        from edgeloop.edge._cexport import export_c
        from edgeloop.edge._quantize import quantize

        qmodel = quantize(model, ds.X_train)
        return dict(export_c(qmodel, prefix="edgeloop").files), list(qmodel.predict(ds.X_test))
    from edgeloop.edge._ctrees import export_trees_c
    from edgeloop.edge.trees import quantize_trees

    trees = quantize_trees(model, ds.X_train)
    return dict(export_trees_c(trees, prefix="edgeloop")), list(trees.predict(ds.X_test))


# the C around each model --------------------------------------------------------------------


@dataclass
class Variant:
    """One exported model: its sources (in ``directory``) and how the harness calls it."""

    dataset: str
    model: str
    tool: str  # "edgeloop", "emlearn", "emlearn soft"
    directory: Path
    n_features: int
    description: str
    reference: bool = True  # False: an extra emlearn configuration, for information
    include: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    setup_s: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.dataset}-{self.model}-{self.tool.replace(' ', '-')}"

    def sources(self) -> list[Path]:
        return sorted(self.directory.glob("*.c"))


def c_float(value: float) -> str:
    """A float32 value as an exact C99 hexadecimal literal."""
    v = float(np.float32(value))
    return ("-" if np.signbit(v) else "") + abs(v).hex() + "f"


def c_array(name: str, values: npt.ArrayLike) -> str:
    items = [c_float(float(v)) for v in np.asarray(values, dtype=np.float32).reshape(-1)]
    rows = ",\n    ".join(", ".join(items[i : i + 6]) for i in range(0, len(items), 6))
    return f"static const float {name}[{len(items)}] = {{\n    {rows}\n}};\n"


ADAPTER_EDGELOOP = """\
/* The benchmark's entry point: the class index of one input. */
#include "model.h"

int bench_predict(const float *input);

int bench_predict(const float *input)
{
    return edgeloop_model_predict_class(input);
}
"""


def adapter_emlearn(header: str, n: int, scaler: Any | None) -> str:
    lines = [
        "/* The benchmark's entry point: the class index of one input. */",
        "#include <stdint.h>",
        f'#include "{header}"',
        "",
        "int bench_predict(const float *input);",
        "",
    ]
    if scaler is None:
        lines += [
            "int bench_predict(const float *input)",
            "{",
            f"    return (int){EMLEARN_NAME}_predict(input, {n});",
            "}",
        ]
    else:  # emlearn converts the MLP only: the StandardScaler runs here, in float32
        inv = np.float32(1.0) / np.asarray(scaler.scale_, dtype=np.float32)
        lines += [
            c_array("SCALER_MEAN", scaler.mean_),
            c_array("SCALER_INV_SCALE", inv),
            "int bench_predict(const float *input)",
            "{",
            f"    float z[{n}];",
            f"    for (int i = 0; i < {n}; i++) {{",
            "        z[i] = (input[i] - SCALER_MEAN[i]) * SCALER_INV_SCALE[i];",
            "    }",
            f"    return (int){EMLEARN_NAME}_predict(z, {n});",
            "}",
        ]
    return "\n".join(lines) + "\n"


ARM_MAIN = """\
/* Calls predict once on a global input, so that the linker keeps what predict reaches.
   BENCH_BASELINE: the same program without the call (start-up code and C library). */
int bench_predict(const float *input);

float bench_input[BENCH_INPUTS];

int main(void)
{
#ifdef BENCH_BASELINE
    return bench_input[0] > 0.0f;
#else
    return bench_predict(bench_input);
#endif
}
"""

HARNESS = r"""
/* Host harness: harness INPUT N D OUTPUT MIN_SECONDS
   Predicts the N float32 inputs of D values in INPUT, writes the N int32 class indices to
   OUTPUT, then predicts them over and over for at least MIN_SECONDS and prints
   {"passes": P, "seconds": S, "us_per_inference": U}. */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int bench_predict(const float *input);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s INPUT N D OUTPUT MIN_SECONDS\n", argv[0]);
        return 2;
    }
    long n = atol(argv[2]), d = atol(argv[3]);
    double min_seconds = atof(argv[5]);
    float *x = malloc(sizeof(float) * (size_t)(n * d));
    int32_t *out = malloc(sizeof(int32_t) * (size_t)n);
    FILE *f = fopen(argv[1], "rb");
    if (!x || !out || !f || fread(x, sizeof(float), (size_t)(n * d), f) != (size_t)(n * d)) {
        fprintf(stderr, "cannot read %ld x %ld floats from %s\n", n, d, argv[1]);
        return 1;
    }
    fclose(f);
    for (long i = 0; i < n; i++) {
        out[i] = bench_predict(x + i * d);
    }
    f = fopen(argv[4], "wb");
    if (!f || fwrite(out, sizeof(int32_t), (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot write %s\n", argv[4]);
        return 1;
    }
    fclose(f);
    volatile int32_t sink = 0;
    long passes = 0;
    double start = now(), elapsed;
    do {
        for (long i = 0; i < n; i++) {
            sink += bench_predict(x + i * d);
        }
        passes++;
        elapsed = now() - start;
    } while (elapsed < min_seconds);
    printf("{\"passes\": %ld, \"seconds\": %.9f, \"us_per_inference\": %.9f}\n", passes, elapsed,
           1e6 * elapsed / ((double)passes * (double)n));
    free(x);
    free(out);
    return (int)(sink & 0);
}
"""


# compiling and measuring --------------------------------------------------------------------


def _run(cmd: Sequence[str], cwd: Path, what: str) -> str:
    done = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({' '.join(cmd)}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(
            f"{name} is not on PATH; apt-get install gcc gcc-arm-none-eabi libnewlib-arm-none-eabi"
        )
    return path


def _berkeley(output: str) -> dict[str, int]:
    """Totals of ``size`` output (Berkeley format: text data bss dec hex filename)."""
    totals = {"text": 0, "data": 0, "bss": 0}
    for line in output.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and all(p.isdigit() for p in parts[:3]):
            for key, value in zip(("text", "data", "bss"), parts[:3], strict=False):
                totals[key] += int(value)
    return totals


def _symbols(path: Path, cwd: Path) -> dict[str, int]:
    """Defined symbols of an object or ELF and their sizes (0 when nm gives none)."""
    out: dict[str, int] = {}
    for line in _run([ARM_NM, "-S", "--defined-only", str(path)], cwd, "nm").splitlines():
        parts = line.split()
        if len(parts) == 4:
            out[parts[3]] = int(parts[1], 16)
        elif len(parts) == 3 and len(parts[1]) == 1:
            out.setdefault(parts[2], 0)
    return out


@dataclass(frozen=True)
class Baseline:
    text: int
    data: int
    bss: int
    symbols: frozenset[str]


def arm_baseline(root: Path, n_features: int) -> Baseline:
    """The M4 program without the predict call: what every firmware has anyway."""
    build = root / f"m4-baseline-{n_features}"
    build.mkdir(parents=True, exist_ok=True)
    main = build / "bench_main.c"
    main.write_text(ARM_MAIN, encoding="utf-8")
    elf = build / "baseline.elf"
    defines = [f"-DBENCH_INPUTS={n_features}", "-DBENCH_BASELINE"]
    _run([ARM_GCC, *M4_FLAGS, *defines, "-c", str(main), "-o", str(build / "main.o")], build, "cc")
    _run([ARM_GCC, *M4_FLAGS, *M4_LINK, str(build / "main.o"), "-lm", "-o", str(elf)], build, "ld")
    sizes = _berkeley(_run([ARM_SIZE, str(elf)], build, "size"))
    return Baseline(**sizes, symbols=frozenset(_symbols(elf, build)))


def measure_m4(variant: Variant, root: Path, baseline: Baseline) -> dict[str, Any]:
    build = root / "m4" / variant.key
    build.mkdir(parents=True, exist_ok=True)
    main = build / "bench_main.c"
    main.write_text(ARM_MAIN, encoding="utf-8")
    includes = [f"-I{variant.directory}", *(f"-I{d}" for d in variant.include)]
    objects, own = [], set()
    for source in [main, *variant.sources()]:
        obj = build / (source.stem + ".o")
        cmd = [ARM_GCC, *M4_FLAGS, f"-DBENCH_INPUTS={variant.n_features}", *includes]
        _run([*cmd, "-c", str(source), "-o", str(obj)], build, f"compiling {source.name} for M4")
        objects.append(obj)
        own |= set(_symbols(obj, build))
    elf = build / "firmware.elf"
    link = [ARM_GCC, *M4_FLAGS, *M4_LINK, *map(str, objects), "-lm", "-o", str(elf)]
    _run(link, build, f"linking {variant.key} for M4")
    linked = _berkeley(_run([ARM_SIZE, str(elf)], build, "size"))
    unlinked = _berkeley(_run([ARM_SIZE, *map(str, objects[1:])], build, "size"))
    symbols = _symbols(elf, build)
    libraries = {
        name: size
        for name, size in sorted(symbols.items())
        if name not in own and name not in baseline.symbols
    }
    flash = linked["text"] + linked["data"] - baseline.text - baseline.data
    ram = linked["data"] + linked["bss"] - baseline.data - baseline.bss
    return {
        "flash_bytes": flash,
        "ram_bytes": ram,
        "linked": linked,
        "baseline": {"text": baseline.text, "data": baseline.data, "bss": baseline.bss},
        "library_symbols": libraries,
        "library_bytes": sum(libraries.values()),
        "objects_unlinked": unlinked,  # the model's objects alone, before --gc-sections
        "objects_unlinked_flash": unlinked["text"] + unlinked["data"],
        "objects_unlinked_ram": unlinked["data"] + unlinked["bss"],
    }


def build_host(variant: Variant, root: Path) -> Path:
    build = root / "host" / variant.key
    build.mkdir(parents=True, exist_ok=True)
    harness = build / "harness.c"
    harness.write_text(HARNESS, encoding="utf-8")
    exe = build / "harness"
    includes = [f"-I{variant.directory}", *(f"-I{d}" for d in variant.include)]
    sources = [str(harness), *map(str, variant.sources())]
    cmd = [HOST_CC, *HOST_FLAGS, *includes, *sources, "-lm", "-o", str(exe)]
    _run(cmd, build, f"compiling {variant.key} for the host")
    return exe


def run_harness(
    exe: Path, inputs: Path, n: int, d: int, output: Path, min_seconds: float
) -> tuple[I64, float]:
    args = [str(exe), str(inputs), str(n), str(d), str(output), repr(min_seconds)]
    out = _run(args, exe.parent, f"running {exe.parent.name}")
    timing = json.loads(out.strip().splitlines()[-1])
    predictions = np.fromfile(output, dtype=np.int32).astype(np.int64)
    if predictions.size != n:
        raise RuntimeError(f"{exe.parent.name} wrote {predictions.size} predictions, not {n}")
    return predictions, float(timing["us_per_inference"])


# the benchmark ------------------------------------------------------------------------------


def prepare(
    datasets: Sequence[Dataset], root: Path, seed: int
) -> tuple[list[Variant], dict[str, Any], dict[str, Any]]:
    """Train, export with both tools; the variants, model facts and emlearn's peer result."""
    variants: list[Variant] = []
    facts: dict[str, Any] = {}
    conversions: list[dict[str, Any]] = []
    pending: dict[str, tuple[Variant, Any]] = {}
    for ds in datasets:
        ds_dir = root / ds.name
        ds_dir.mkdir(parents=True, exist_ok=True)
        np.save(ds_dir / "X_test.npy", ds.X_test)
        np.ascontiguousarray(ds.X_test, dtype="<f4").tofile(ds_dir / "X_test.f32")
        for kind in MODELS:
            t0 = time.perf_counter()
            model, info = train(ds, kind, seed)
            train_s = time.perf_counter() - t0
            classes = np.asarray(model.classes_)
            truth = np.searchsorted(classes, ds.y_test)
            sk_pred = np.searchsorted(classes, model.predict(ds.X_test))
            info |= {
                "sklearn_accuracy": float(np.mean(sk_pred == truth)),
                "classes": [str(c) for c in classes],
                "train_s": train_s,
            }
            facts[f"{ds.name}-{kind}"] = info | {"sklearn_predictions": sk_pred, "truth": truth}
            pickle = ds_dir / f"{kind}.joblib"
            joblib.dump(model, pickle)
            console.log(
                f"{ds.name} {kind}: scikit-learn accuracy {info['sklearn_accuracy']:.4f} "
                f"({train_s:.1f} s to train)"
            )

            el = Variant(
                ds.name,
                kind,
                "edgeloop",
                ds_dir / f"{kind}-edgeloop",
                ds.n_features,
                "int8, quantize + export_c"
                if kind == "mlp"
                else "int16 inputs, quantize_trees + export_trees_c",
            )
            t0 = time.perf_counter()
            files, reference = edgeloop_sources(model, kind, ds)
            el.setup_s["export_s"] = time.perf_counter() - t0
            el.directory.mkdir(parents=True, exist_ok=True)
            for name, content in files.items():
                (el.directory / name).write_bytes(content)
            (el.directory / "bench_model.c").write_text(ADAPTER_EDGELOOP, encoding="utf-8")
            label_index = {str(c): i for i, c in enumerate(classes)}
            el.checks["numpy_reference"] = np.array([label_index[p] for p in reference])
            variants.append(el)

            configs: list[tuple[str, dict[str, Any], str, bool]]
            if kind == "mlp":
                configs = [("emlearn", {"method": "loadable"}, "float32, loadable", True)]
            else:
                configs = [
                    (
                        "emlearn",
                        {"method": "inline", "dtype": "float"},
                        "float, inline, majority vote",
                        True,
                    ),
                    (
                        "emlearn soft",
                        {"method": "inline", "dtype": "float", "leaf_bits": 8},
                        "float, inline, 8-bit soft vote",
                        False,
                    ),
                ]
            for tool, options, description, is_reference in configs:
                em = Variant(
                    ds.name,
                    kind,
                    tool,
                    ds_dir / f"{kind}-{tool.replace(' ', '-')}",
                    ds.n_features,
                    description,
                    reference=is_reference,
                )
                em.directory.mkdir(parents=True, exist_ok=True)
                conversions.append(
                    {
                        "key": em.key,
                        "model": str(pickle),
                        "convert": options,
                        "name": EMLEARN_NAME,
                        "file": str(em.directory / f"{EMLEARN_NAME}.h"),
                        "X": str(ds_dir / "X_test.npy"),
                    }
                )
                scaler = model.named_steps["scaler"] if kind == "mlp" else None
                adapter = adapter_emlearn(f"{EMLEARN_NAME}.h", ds.n_features, scaler)
                (em.directory / "bench_model.c").write_text(adapter, encoding="utf-8")
                pending[em.key] = (em, model)
                variants.append(em)
    console.log(f"converting {len(conversions)} models with emlearn in {EMLEARN.name}")
    peer = run_in_peer(
        EMLEARN.name,
        PEER_SCRIPTS / "emlearn_export.py",
        {"workdir": str(root), "conversions": conversions},
    )
    for result in peer["conversions"]:
        em, _model = pending[result["key"]]
        em.include = [peer["includedir"]]
        em.setup_s["export_s"] = result["convert_s"]
        em.checks["wrapper"] = np.asarray(result["wrapper_predictions"], dtype=np.int64)
    return variants, facts, peer


@dataclass(frozen=True)
class Row:
    dataset: str
    model: str
    tool: str
    description: str
    reference: bool
    flash_bytes: int
    ram_bytes: int
    library_bytes: int
    accuracy: float
    us_per_inference: float
    us_rounds: list[float]
    agreement_with_sklearn: float
    errors: int  # negative return codes from predict
    check: str  # C against edgeloop's numpy reference / emlearn's Python wrapper
    check_ok: bool


def measure(
    variants: Sequence[Variant],
    facts: Mapping[str, Any],
    datasets: Sequence[Dataset],
    root: Path,
    args: argparse.Namespace,
) -> tuple[list[Row], dict[str, Any]]:
    by_name = {ds.name: ds for ds in datasets}
    baselines: dict[int, Baseline] = {}
    m4: dict[str, dict[str, Any]] = {}
    exes: dict[str, Path] = {}
    for v in variants:
        if v.n_features not in baselines:
            baselines[v.n_features] = arm_baseline(root, v.n_features)
        t0 = time.perf_counter()
        m4[v.key] = measure_m4(v, root, baselines[v.n_features])
        v.setup_s["m4_build_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        exes[v.key] = build_host(v, root)
        v.setup_s["host_build_s"] = time.perf_counter() - t0
        console.log(
            f"{v.key}: M4 flash {m4[v.key]['flash_bytes']:,} B, RAM {m4[v.key]['ram_bytes']:,} B "
            f"(builds {v.setup_s['m4_build_s'] + v.setup_s['host_build_s']:.1f} s)"
        )
    predictions: dict[str, I64] = {}
    rounds: dict[str, list[float]] = {v.key: [] for v in variants}
    for r in range(args.rounds):  # the tools alternate within each round
        for v in variants:
            ds = by_name[v.dataset]
            pred, us = run_harness(
                exes[v.key],
                root / ds.name / "X_test.f32",
                ds.X_test.shape[0],
                ds.n_features,
                root / "host" / v.key / "predictions.i32",
                args.min_seconds,
            )
            if v.key in predictions and not np.array_equal(predictions[v.key], pred):
                raise RuntimeError(f"{v.key}: the C predicted differently from one run to the next")
            predictions[v.key] = pred
            rounds[v.key].append(us)
        console.log(f"timing round {r + 1}/{args.rounds} done")
    rows = []
    for v in variants:
        fact = facts[f"{v.dataset}-{v.model}"]
        pred, truth = predictions[v.key], fact["truth"]
        if v.tool == "edgeloop":
            expected, what = v.checks["numpy_reference"], "edgeloop numpy reference"
        else:
            expected, what = v.checks["wrapper"], "emlearn's Python wrapper"
        same = int(np.sum(expected == pred))
        rows.append(
            Row(
                dataset=v.dataset,
                model=v.model,
                tool=v.tool,
                description=v.description,
                reference=v.reference,
                flash_bytes=m4[v.key]["flash_bytes"],
                ram_bytes=m4[v.key]["ram_bytes"],
                library_bytes=m4[v.key]["library_bytes"],
                accuracy=float(np.mean(pred == truth)),
                us_per_inference=statistics.median(rounds[v.key]),
                us_rounds=rounds[v.key],
                agreement_with_sklearn=float(np.mean(pred == fact["sklearn_predictions"])),
                errors=int(np.sum(pred < 0)),
                check=f"{same}/{pred.size} equal to {what}",
                check_ok=same == pred.size,
            )
        )
    return rows, m4


@dataclass(frozen=True)
class Comparison:
    dataset: str
    model: str
    flash_ratio: float  # edgeloop / emlearn
    ram_ratio: float | None  # None: emlearn uses no static RAM
    latency_ratio: float
    accuracy_points: float  # edgeloop minus the best emlearn row, percentage points
    accuracy_met: bool
    flash_target: bool
    flash_met: bool | None


def compare(rows: Sequence[Row]) -> list[Comparison]:
    out = []
    for ds in dict.fromkeys(r.dataset for r in rows):
        for model in MODELS:
            group = [r for r in rows if r.dataset == ds and r.model == model]
            ours = next(r for r in group if r.tool == "edgeloop")
            ref = next(r for r in group if r.tool == "emlearn")
            best = max(r.accuracy for r in group if r.tool != "edgeloop")
            flash_target = model == "mlp"
            out.append(
                Comparison(
                    dataset=ds,
                    model=model,
                    flash_ratio=ours.flash_bytes / ref.flash_bytes,
                    ram_ratio=ours.ram_bytes / ref.ram_bytes if ref.ram_bytes else None,
                    latency_ratio=ours.us_per_inference / ref.us_per_inference,
                    accuracy_points=100.0 * (ours.accuracy - best),
                    accuracy_met=ours.accuracy >= best,
                    flash_target=flash_target,
                    flash_met=ours.flash_bytes <= ref.flash_bytes if flash_target else None,
                )
            )
    return out


# report -------------------------------------------------------------------------------------


def _yes(met: bool | None) -> str:
    return "-" if met is None else ("[green]yes[/]" if met else "[red]NO[/]")


def print_tables(
    rows: Sequence[Row],
    comparisons: Sequence[Comparison],
    m4: Mapping[str, Mapping[str, Any]],
    versions: Mapping[str, str],
    args: argparse.Namespace,
) -> None:
    out = Console(width=max(Console().width, 150))
    table = Table(
        title=f"edgeloop {versions['edgeloop']} vs emlearn {versions['emlearn']}: Cortex-M4F "
        f"flash / RAM (linked, -Os), C accuracy, host us/inference (median of {args.rounds})"
    )
    columns: list[tuple[str, JustifyMethod]] = [
        ("dataset", "left"),
        ("model", "left"),
        ("tool", "left"),
        ("flash B", "right"),
        ("RAM B", "right"),
        ("of flash: libs", "right"),
        ("accuracy", "right"),
        ("= sklearn", "right"),
        ("us/inference", "right"),
        ("export", "left"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    previous = None
    for r in rows:
        if previous is not None and (r.dataset, r.model) != previous:
            table.add_section()
        previous = (r.dataset, r.model)
        table.add_row(
            r.dataset,
            r.model,
            r.tool if r.reference else f"{r.tool} (info)",
            f"{r.flash_bytes:,}",
            f"{r.ram_bytes:,}",
            f"{r.library_bytes:,}",
            f"{100 * r.accuracy:.2f}%",
            f"{100 * r.agreement_with_sklearn:.1f}%",
            f"{r.us_per_inference:.3f}",
            r.description,
        )
    out.print(table)

    ratios = Table(title="edgeloop / emlearn (reference rows) and targets")
    columns = [
        ("dataset", "left"),
        ("model", "left"),
        ("flash", "right"),
        ("RAM", "right"),
        ("us/inference", "right"),
        ("accuracy, points", "right"),
        ("accuracy >= emlearn", "center"),
        ("flash <= emlearn", "center"),
    ]
    for name, justify in columns:
        ratios.add_column(name, justify=justify)
    for c in comparisons:
        ratios.add_row(
            c.dataset,
            c.model,
            f"{c.flash_ratio:.2f}x",
            "-" if c.ram_ratio is None else f"{c.ram_ratio:.2f}x",
            f"{c.latency_ratio:.2f}x",
            f"{c.accuracy_points:+.2f}",
            _yes(c.accuracy_met),
            _yes(c.flash_met),
        )
    out.print(ratios)
    notes = [
        "flash = text + data, RAM = data + bss of the linked M4 ELF minus the same program "
        "without the predict call; stack not included for either tool",
        "accuracy points: edgeloop minus the best emlearn row (forest: majority and soft vote)",
        "'= sklearn': share of test samples where the C predicts what scikit-learn predicts",
    ]
    for r in rows:
        key = f"{r.dataset}-{r.model}-{r.tool.replace(' ', '-')}"
        libs = ", ".join(f"{k} {v}" for k, v in m4[key]["library_symbols"].items() if v)
        status = "ok" if r.check_ok else "[red]MISMATCH[/]"
        notes.append(
            f"{key}: C {r.check} ({status}); libraries: {libs or 'none'}; "
            f"unlinked objects {m4[key]['objects_unlinked_flash']:,} B flash"
            + (f"; {r.errors} predict errors" if r.errors else "")
        )
    for note in notes:
        out.print(f"  {note}", highlight=False)


def _tool_version(cmd: str) -> str:
    done = subprocess.run([cmd, "-dumpfullversion"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 machines x 4 recordings")
    parser.add_argument("--machines", type=int, default=None, help="vibration machines (12)")
    parser.add_argument(
        "--recordings", type=int, default=None, help="recordings per machine and condition (10)"
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per recording (2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds per model (3)")
    parser.add_argument(
        "--min-seconds", type=float, default=0.2, help="timed seconds per round (0.2)"
    )
    parser.add_argument("--workdir", type=Path, help="build here and keep it (default: a temp)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    args.machines = args.machines or (4 if args.quick else 12)
    args.recordings = args.recordings or (4 if args.quick else 10)
    if args.rounds < 1 or args.min_seconds <= 0 or args.machines < 4:
        parser.error("--rounds must be >= 1, --min-seconds > 0, --machines >= 4")
    for tool in (HOST_CC, ARM_GCC, ARM_SIZE, ARM_NM):
        _tool(tool)

    started = time.perf_counter()
    load_before = os.getloadavg()
    console.log(f"preparing peer venv {EMLEARN.requirements}")
    ensure_peer(EMLEARN)
    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-edge-") as tmp:
        root = (args.workdir or Path(tmp)).resolve()
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        datasets = [
            digits_data(args.seed),
            vibration_data(args.machines, args.recordings, args.seconds, args.seed),
        ]
        data_s = time.perf_counter() - t0
        for ds in datasets:
            console.log(
                f"{ds.name}: {ds.X_train.shape[0]:,} train / {ds.X_test.shape[0]:,} test, "
                f"{ds.n_features} features, {len(np.unique(ds.y_train))} classes"
            )
        variants, facts, peer = prepare(datasets, root, args.seed)
        rows, m4 = measure(variants, facts, datasets, root, args)
    comparisons = compare(rows)
    versions = {
        "edgeloop": metadata.version("edgeloop"),
        "emlearn": peer["versions"]["emlearn"],
        "scikit-learn": metadata.version("scikit-learn"),
        "numpy": np.__version__,
        "peer": peer["versions"],
        "arm-none-eabi-gcc": _tool_version(ARM_GCC),
        "gcc": _tool_version(HOST_CC),
    }
    print_tables(rows, comparisons, m4, versions, args)
    met = all(c.accuracy_met and c.flash_met is not False for c in comparisons)
    report = {
        "benchmark": "edge",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "versions": versions,
        "flags": {"m4": [*M4_FLAGS], "m4_link": [*M4_LINK, "-lm"], "host": [*HOST_FLAGS]},
        "datasets": {
            ds.name: ds.info
            | {
                "train": int(ds.X_train.shape[0]),
                "test": int(ds.X_test.shape[0]),
                "features": ds.n_features,
                "classes": len(np.unique(ds.y_train)),
            }
            for ds in datasets
        },
        "models": {
            k: {n: v for n, v in f.items() if n not in ("sklearn_predictions", "truth")}
            for k, f in facts.items()
        },
        "targets": {
            "accuracy": "edgeloop C accuracy >= every emlearn row's, per data set and model",
            "flash": "MLP: edgeloop flash <= emlearn flash",
        },
        "rows": [asdict(r) for r in rows],
        "comparisons": [asdict(c) for c in comparisons],
        "m4": m4,
        "setup_s": {"data": data_s} | {v.key: v.setup_s for v in variants},
        "all_checks_ok": all(r.check_ok for r in rows),
        "all_targets_met": met,
        "wall_s": time.perf_counter() - started,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.log(f"wrote {args.output} in {report['wall_s']:.0f} s")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
