"""Calibrate the cortex-m4f cycle table by counting instructions of the generated C under QEMU.

edgeloop prices a model's inference as counted operations (``CExport.operations``: ``mac``,
``requant``, ``quantize``, ``features.adds``, ...) times per-core cycle costs from
``src/edgeloop/edge/targets.yaml``, which are estimates from published instruction timings.
This benchmark runs the exported C on an emulated Cortex-M4F and counts what executes.

Method:

1. Models, trained in ``.venv`` (``MLPClassifier``, ``random_state=--seed``, behind a
   ``StandardScaler``), quantized with ``edgeloop.edge._quantize.quantize`` on the training
   inputs and exported with ``export_c``:

   * ``digits``: scikit-learn's ``load_digits``, 64 -> 32 -> 10, no feature block;
   * ``digits-wide``: the same data, 64 -> 128 -> 64 -> 10;
   * ``vibration``: ``edgeloop.sim.simulate_fleet`` (4 machines x 4 conditions x 4
     recordings of 2 s at 1 kHz), 500 ms windows, ``vibration_features`` (``FlattenBlock``
     + ``SpectralBlock(fft 256, 8 bands)`` on 3 axes = 63 features), 63 -> 32 -> 4: the raw
     500 x 3 window goes through the generated feature block, then the network.

   The fixed input is the first test sample (window); the numpy reference's class for it is
   compiled in and checked against the C's ``predict_class`` in the guest.
2. A bare-metal program for QEMU's ``mps2-an386`` (Cortex-M4 with FPv4-SP; ``benchmarks/qemu/``:
   vector table, reset handler copying ``.data``, zeroing ``.bss``, enabling the FPU in CPACR,
   Arm semihosting for output and exit, linker script for the AN386 memory map) calls
   ``edgeloop_model_predict`` ``--repeat`` times, then ``edgeloop_features_compute`` as many
   times, with a marker call before, between and after. Built with ``arm-none-eabi-gcc
   -std=c99 -mthumb -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard -ffp-contract=off
   -ffunction-sections -fdata-sections -g`` at each of ``--opt`` (``-Os``, ``-O2``), linked
   with newlib-nano and libm.
3. Counting: ``benchmarks/qemu/insn_counter.c``, a QEMU TCG plugin built here with the host
   ``gcc``, gives every guest instruction address an inline execution counter and dumps all
   counters whenever the marker function runs. A region's counts are the difference of two
   dumps, divided by ``--repeat`` (the input is fixed, so every repetition executes the same
   instructions: the division is exact up to the few instructions of the marker call).
4. Attribution: ``arm-none-eabi-objdump -d -l`` maps each address to its mnemonic, its
   function symbol and its source line (the innermost one, so inlined code keeps its
   origin). Lines of ``model.c`` and ``features.c`` are attributed by the C function they
   are in: the inner dot-product loop of ``dot_layer*`` (the ``acc +=`` and ``for (i = 0; i <
   depth`` lines) is ``mac``; ``requantize``, ``srdhm``, ``rdbpot`` are ``requant``; the
   rest of ``dot_layer*`` (bias, per-unit pointers, the output store) is ``unit_loop``, also
   once per output value, with no catalog cost of its own (the suggestion folds it into
   ``requant``); ``quantize_value``, libm's ``floorf`` and the loop calling it are ``quantize``; the
   feature block's ``fft`` is ``fft_butterflies``, ``log10f``/``logf`` (libm) and the line
   calling it are ``logs``, the ``isfinite`` check of the raw window is ``input_check`` (not
   counted by ``operation_counts``), everything else in ``features.c`` plus libm's ``sqrtf``
   is ``float_ops`` (``adds + muls + divs + sqrts + compares``: the C computes them in fused
   loops, so they cannot be told apart); the remaining model code (``predict``, ``infer``,
   ``run_layers``, output dequantization) is ``model_other``.
5. Cycles. Instructions are not cycles. Besides the instruction count, each region gets an
   estimate from its instruction mix with the Cortex-M4 TRM timings (zero-wait memory,
   as the catalog assumes): 1 cycle per instruction, except single loads (``LDR*``, ``VLDR``)
   2, or 1 when directly after another single load/store (pipelined); ``LDM``/``STM``/
   ``PUSH``/``POP``/``VLDM``/``VSTM``/``VPUSH``/``VPOP`` 1 + registers (+2 when ``POP`` loads
   the PC); ``LDRD``/``STRD`` 3; taken branches 3 (1 + a 2-cycle refill), not-taken 1 (a
   conditional branch counts as taken as often as its fall-through instruction runs less,
   when no other branch targets that instruction, else half the time); ``VMLA``/``VFMA``
   family 3; ``VDIV``/``VSQRT`` 14; ``SDIV``/``UDIV`` 7 (2-12). IT instructions count 1
   (the core can fold some into the previous instruction). This ``est. cycles`` is an
   estimate, good to perhaps +-15 %: no wait states, no flash accelerator, no FPU stalls.

Printed, per model and optimisation level: op kind, counted ops, measured instructions,
instructions per op, estimated cycles per op and the catalog's cycles per op; per model,
the catalog's total (``estimate_latency`` on the ``nano33ble`` target, a cortex-m4f) against
the measured total, and the total the suggested values give. Last, suggested cortex-m4f
values: the median over models of the ``-O2`` (the catalog's compiler setting) estimated
cycles per op. There are no pass/fail targets: the figures are reported as measured.
Results go to ``benchmarks/results/qemu_calibrate.json``; the exit status is 1 if a
guest's self-test or predicted class disagrees with the numpy reference.

Needs ``qemu-system-arm`` with TCG plugin support (Debian 12: ``apt-get install
qemu-system-arm``, QEMU 7.2; it ships no contrib plugins, so this builds its own), ``gcc``,
``arm-none-eabi-gcc`` and newlib (``gcc-arm-none-eabi libnewlib-arm-none-eabi``). Without
them it prints why and exits 0 without results.

Run::

    .venv/bin/python benchmarks/qemu_calibrate.py              # ~10 s
    .venv/bin/python benchmarks/qemu_calibrate.py --opt O2 --repeat 2
    .venv/bin/python benchmarks/qemu_calibrate.py --workdir /tmp/qemu-cal   # keep the build
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
GUEST = HERE / "qemu"
RESULTS = HERE / "results" / "qemu_calibrate.json"
console = Console(stderr=True)
WIDTH = max(shutil.get_terminal_size((120, 24)).columns, 100)

QEMU, ARM_GCC, ARM_OBJDUMP, ARM_NM, HOST_CC = (
    "qemu-system-arm",
    "arm-none-eabi-gcc",
    "arm-none-eabi-objdump",
    "arm-none-eabi-nm",
    "gcc",
)
MACHINE = "mps2-an386"
M4_FLAGS = (
    "-std=c99",
    "-mthumb",
    "-mcpu=cortex-m4",
    "-mfpu=fpv4-sp-d16",
    "-mfloat-abi=hard",
    "-ffp-contract=off",
    "-ffunction-sections",
    "-fdata-sections",
    "-g",
)
M4_LINK = (
    "-nostartfiles",
    "-Wl,--gc-sections",
    "--specs=nano.specs",
    "--specs=nosys.specs",
)
TARGET = "nano33ble"  # a cortex-m4f board of the catalog: its cycle table is the one calibrated
SAMPLE_RATE, WINDOW_MS, STRIDE_MS = 1000.0, 500.0, 250.0

# op kinds of the report, each with the counted operations it is compared with
KINDS: dict[str, tuple[str, ...]] = {
    "mac": ("mac",),
    "requant": ("requant",),
    "unit_loop": ("requant",),  # per output value too, but no cost of its own in the catalog
    "quantize": ("quantize",),
    "compare": ("compare",),
    "model_other": (),
    "fft_butterflies": ("features.fft_butterflies",),
    "logs": ("features.logs",),
    "float_ops": (
        "features.adds",
        "features.muls",
        "features.divs",
        "features.sqrts",
        "features.compares",
    ),
    "input_check": (),
    "library_other": (),
}
LOG_SYMBOLS = re.compile(r"^(log10f|logf|__ieee754_log\w*|__kernel_log\w*|__math_\w+|__log\w*)$")


# models -------------------------------------------------------------------------------------


@dataclass
class Model:
    name: str
    description: str
    files: dict[str, bytes]
    operations: dict[str, int]
    input: np.ndarray  # float32, what predict() takes
    expected_class: int
    features: bool
    info: dict[str, Any] = field(default_factory=dict)


def _mlp(hidden: tuple[int, ...], seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    mlp = MLPClassifier(hidden_layer_sizes=hidden, random_state=seed)
    return Pipeline([("scaler", StandardScaler()), ("mlp", mlp)])


def _fit(model: Any, X: np.ndarray, y: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: irrelevant for instruction counts
        model.fit(X, y)


def digits_models(seed: int) -> list[Model]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from edgeloop.edge._cexport import export_c
    from edgeloop.edge._quantize import quantize

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(
        X.astype(np.float32), y, test_size=0.25, random_state=seed, stratify=y
    )
    models = []
    for name, hidden in (("digits", (32,)), ("digits-wide", (128, 64))):
        net = _mlp(hidden, seed)
        _fit(net, X_train, y_train)
        q = quantize(net, X_train)
        export = export_c(q, prefix="edgeloop")
        sizes = " -> ".join(str(n) for n in (64, *hidden, 10))
        models.append(
            Model(
                name=name,
                description=f"MLP {sizes} on digits features, no feature block",
                files=dict(export.files),
                operations=dict(export.operations),
                input=X_test[0].astype(np.float32),
                expected_class=int(q.predict_index(X_test[:1])[0]),
                features=False,
            )
        )
    return models


def vibration_model(seed: int) -> Model:
    from edgeloop.datasets import WindowSpec, make_windows
    from edgeloop.edge._cexport import export_c
    from edgeloop.edge._quantize import quantize
    from edgeloop.sim import simulate_fleet, to_table
    from edgeloop.sim.steps import AXES, vibration_features
    from edgeloop.train import FeaturePipeline, windows_from_table

    fleet = simulate_fleet(
        machines=4, recordings_per_condition=4, seconds=2.0, sample_rate=SAMPLE_RATE, seed=seed
    )
    spec = WindowSpec(length_ms=WINDOW_MS, stride_ms=STRIDE_MS, sample_rate=SAMPLE_RATE)
    windows = make_windows(to_table(fleet), spec, axes=AXES)
    out = vibration_features(windows.table, sample_rate=SAMPLE_RATE, seed=seed)
    pipeline = FeaturePipeline.from_dict(out["features"])
    shape = (int(out["window"][0]), int(out["window"][1]))
    net = _mlp((32,), seed)
    X_train = np.asarray(out["X_train"], dtype=np.float32)
    _fit(net, X_train, out["y_train"])
    q = quantize(net, X_train)
    export = export_c(q, pipeline, window=shape, prefix="edgeloop")
    raw = np.asarray(windows_from_table(windows.table, list(AXES))[0], dtype=np.float32)
    expected = int(q.predict_index(pipeline.transform(raw[None]))[0])
    return Model(
        name="vibration",
        description=(
            f"raw window {shape[0]} x {shape[1]} -> FlattenBlock + SpectralBlock(fft 256, "
            f"8 bands) = {X_train.shape[1]} features -> MLP {X_train.shape[1]} -> 32 -> "
            f"{len(q.labels)}"
        ),
        files=dict(export.files),
        operations=dict(export.operations),
        input=raw.reshape(-1),
        expected_class=expected,
        features=True,
        info={"window": list(shape), "windows": windows.table.num_rows},
    )


# building and running -----------------------------------------------------------------------


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


def missing_tools() -> list[str]:
    """Why this benchmark cannot run here (empty when it can)."""
    why = [
        f"{t} not found"
        for t in (QEMU, ARM_GCC, ARM_OBJDUMP, ARM_NM, HOST_CC)
        if not shutil.which(t)
    ]
    if not why:
        done = subprocess.run([QEMU, "-M", "help"], capture_output=True, text=True, check=False)
        if MACHINE not in done.stdout:
            why.append(f"{QEMU} has no {MACHINE} machine")
        done = subprocess.run(
            [QEMU, "-M", MACHINE, "-plugin", "help"], capture_output=True, text=True, check=False
        )
        if "plugin" in done.stderr and "invalid option" in done.stderr:
            why.append(f"{QEMU} was built without TCG plugin support (-plugin)")
    return why


def qemu_version() -> str:
    done = subprocess.run([QEMU, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.splitlines()[0] if done.stdout else "?"


def build_plugin(root: Path, api_version: int) -> Path:
    lib = root / f"libinsn_counter_v{api_version}.so"
    _run(
        [
            HOST_CC,
            "-shared",
            "-fPIC",
            "-O2",
            f"-DPLUGIN_API_VERSION={api_version}",
            str(GUEST / "insn_counter.c"),
            "-o",
            str(lib),
        ]
    )
    return lib


def _c_floats(values: np.ndarray) -> str:
    text = [f"{float(v)!r}f" if np.isfinite(v) else "0.0f" for v in values.astype(np.float32)]
    return ",\n".join(", ".join(text[i : i + 8]) for i in range(0, len(text), 8))


def build_guest(model: Model, opt: str, repeat: int, root: Path) -> Path:
    src = root / model.name / "src"
    src.mkdir(parents=True, exist_ok=True)
    for name, content in model.files.items():
        (src / name).write_bytes(content)
    values = np.asarray(model.input, dtype=np.float32)
    (src / "bench_data.h").write_text(
        f"/* written by qemu_calibrate.py: {model.name} */\n"
        f"#define BENCH_REPEAT {repeat}\n"
        f"#define BENCH_HAS_FEATURES {int(model.features)}\n"
        f"#define BENCH_EXPECTED_CLASS {model.expected_class}\n"
        f"static const float bench_input[{values.size}] = {{\n{_c_floats(values)}\n}};\n",
        encoding="utf-8",
    )
    elf = root / model.name / f"{model.name}-{opt}.elf"
    sources = [GUEST / "startup.c", GUEST / "bench_main.c", *sorted(src.glob("*.c"))]
    _run(
        [
            ARM_GCC,
            *M4_FLAGS,
            f"-{opt}",
            f"-I{src}",
            *map(str, sources),
            f"-T{GUEST / 'an386.ld'}",
            *M4_LINK,
            "-lm",
            "-o",
            str(elf),
        ]
    )
    return elf


def run_qemu(elf: Path, plugin: Path, mark: int, log: Path) -> tuple[str, float]:
    log.unlink(missing_ok=True)
    cmd = [
        QEMU,
        "-M",
        MACHINE,
        "-cpu",
        "cortex-m4",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-chardev",
        "stdio,id=semihosting",
        "-semihosting-config",
        "enable=on,target=native,chardev=semihosting",
        "-kernel",
        str(elf),
        "-plugin",
        f"{plugin},mark={mark:#x}",
        "-d",
        "plugin",
        "-D",
        str(log),
    ]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    seconds = time.perf_counter() - t0
    if done.returncode != 0 or not log.is_file():
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout, seconds


def read_dumps(log: Path) -> list[dict[int, int]]:
    dumps: list[dict[int, int]] = []
    for line in log.read_text(encoding="utf-8").splitlines():
        head, _, value = line.partition(" ")
        if head in ("mark", "exit"):
            dumps.append({})
        elif head != "other" and dumps and value:
            dumps[-1][int(head, 16)] = int(value)
    return dumps


# attribution --------------------------------------------------------------------------------


@dataclass
class Insn:
    address: int
    size: int
    mnemonic: str
    operands: str
    symbol: str
    file: str
    line: int


_SYMBOL = re.compile(r"^([0-9a-f]+) <(.+)>:$")
_LINE = re.compile(r"^(/\S*|\S+\.[chS]):(\d+)(?: \(discriminator \d+\))?$")
_INSN = re.compile(r"^\s+([0-9a-f]+):\t([0-9a-f ]+)\t(\S+)\s*(.*)$")


def disassemble(elf: Path) -> dict[int, Insn]:
    out = _run([ARM_OBJDUMP, "-d", "-l", "-j", ".text", str(elf)]).stdout
    insns: dict[int, Insn] = {}
    symbol, file, line = "", "", 0
    for text in out.splitlines():
        if m := _SYMBOL.match(text):
            symbol, file, line = m.group(2), "", 0
        elif m := _LINE.match(text):
            file, line = Path(m.group(1)).name, int(m.group(2))
        elif m := _INSN.match(text):
            raw = m.group(2).split()
            size = sum(len(h) // 2 for h in raw)
            address = int(m.group(1), 16)
            insns[address] = Insn(address, size, m.group(3), m.group(4), symbol, file, line)
    return insns


def c_functions(source: str) -> dict[int, str]:
    """Line number (1-based) -> the C function it is in, for edgeloop's generated layout."""
    lines = source.splitlines()
    where: dict[int, str] = {}
    current, header = "", ""
    for number, text in enumerate(lines, start=1):
        if current == "" and (m := re.match(r"^[A-Za-z_][\w \*]*?\b(\w+)\(", text)):
            header = m.group(1)
        if text.startswith("{") and header:
            current = header
        if current:
            where[number] = current
        if text.startswith("}"):
            current, header = "", ""
    return where


def kind_of(insn: Insn, functions: dict[str, dict[int, str]], sources: dict[str, list[str]]) -> str:
    if insn.file in functions:
        func = functions[insn.file].get(insn.line, "")
        text = sources[insn.file][insn.line - 1] if 0 < insn.line <= len(sources[insn.file]) else ""
        if insn.file == "model.c":
            if func.startswith(("dot_layer", "conv")):
                return "mac" if ("acc +=" in text or "i < depth" in text) else "unit_loop"
            if func in ("requantize", "srdhm", "rdbpot"):
                return "requant"
            if func == "quantize_value" or (
                func == "infer" and ("quantize_value" in text or "INPUT_SIZE" in text)
            ):
                return "quantize"
            if "pool" in func:
                return "compare"
            return "model_other"
        if func == "fft":
            return "fft_butterflies"
        if "log10f" in text or "logf(" in text:
            return "logs"
        if func.endswith("features_compute") and (
            "isfinite" in text or "N_SAMPLES * N_AXES" in text
        ):
            return "input_check"
        return "float_ops"
    if insn.symbol == "floorf":
        return "quantize"
    if insn.symbol in ("sqrtf", "__ieee754_sqrtf"):
        return "float_ops"
    if LOG_SYMBOLS.match(insn.symbol):
        return "logs"
    if insn.file in ("bench_main.c", "startup.c") or insn.symbol in ("main", "bench_mark"):
        return "harness"
    return "library_other"


# cycle estimate from the instruction mix (Cortex-M4 TRM, zero wait states)
_BRANCH = re.compile(
    r"^(b|bl|blx|bx|cbz|cbnz)(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?(\.[nw])?$"
)
_CONDITIONAL = re.compile(r"^(b(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)(\.[nw])?|cbn?z)$")
_SINGLE_LOAD = re.compile(r"^(ldr(b|sb|h|sh|ex)?|vldr)(\.\w+)?$")
_SINGLE_STORE = re.compile(r"^(str(b|h|ex)?|vstr)(\.\w+)?$")
_MULTI = re.compile(r"^(ldm\w*|stm\w*|push|pop|vldm\w*|vstm\w*|vpush|vpop)(\.\w+)?$")


def _registers(operands: str) -> int:
    inside = operands[operands.find("{") + 1 : operands.find("}")]
    total = 0
    for part in inside.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = (int(re.sub(r"\D", "", p)) for p in part.split("-"))
            total += hi - lo + 1
        elif part:
            total += 1
    return max(total, 1)


def _base(mnemonic: str) -> str:
    return mnemonic.split(".")[0]


def insn_cycles(insn: Insn, previous: Insn | None, taken: float) -> float:
    """Cycles of one execution of ``insn`` (``taken``: fraction of executions that branch)."""
    m = insn.mnemonic
    base = _base(m)
    if _BRANCH.match(m):
        return 1.0 + 2.0 * taken
    if _MULTI.match(m):
        n = _registers(insn.operands)
        return 1.0 + n + (2.0 if base == "pop" and "pc" in insn.operands else 0.0)
    if base in ("ldrd", "strd"):
        return 3.0
    if _SINGLE_LOAD.match(m):
        if "pc" in insn.operands.split(",")[0]:
            return 4.0
        pipelined = previous is not None and (
            _SINGLE_LOAD.match(previous.mnemonic) or _SINGLE_STORE.match(previous.mnemonic)
        )
        return 1.0 if pipelined else 2.0
    if _SINGLE_STORE.match(m):
        return 1.0 if base.startswith("str") else 2.0
    if base in ("vdiv", "vsqrt"):
        return 14.0
    if base in ("vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"):
        return 3.0
    if base in ("sdiv", "udiv"):
        return 7.0
    return 1.0


@dataclass
class Region:
    instructions: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cycles: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    mnemonics: Counter[str] = field(default_factory=Counter)


def attribute(counts: dict[int, float], insns: dict[int, Insn], sources: dict[str, str]) -> Region:
    functions = {name: c_functions(text) for name, text in sources.items()}
    lines = {name: text.splitlines() for name, text in sources.items()}
    targets = set()
    for insn in insns.values():  # direct branches: "b.n 2e6 <f+0x52>", "cbz r0, 276 <f+0x8a>"
        if _BRANCH.match(insn.mnemonic) and (m := re.search(r"\b([0-9a-f]+) <", insn.operands)):
            targets.add(int(m.group(1), 16))
    ordered = sorted(insns)
    previous = {a: insns[b] for b, a in itertools.pairwise(ordered)}
    region = Region()
    for address, count in counts.items():
        if count <= 0:
            continue
        insn = insns.get(address)
        if insn is None:
            region.instructions["unknown"] += count
            continue
        taken = 1.0
        if _CONDITIONAL.match(insn.mnemonic):
            after = address + insn.size
            if after in targets or after not in insns:
                taken = 0.5
            else:
                taken = min(max(1.0 - counts.get(after, 0.0) / count, 0.0), 1.0)
        kind = kind_of(insn, functions, lines)
        region.instructions[kind] += count
        region.cycles[kind] += count * insn_cycles(insn, previous.get(address), taken)
        region.mnemonics[_base(insn.mnemonic)] += round(count)
    return region


def region_counts(before: dict[int, int], after: dict[int, int], repeat: int) -> dict[int, float]:
    return {a: (c - before.get(a, 0)) / repeat for a, c in after.items() if c != before.get(a, 0)}


# measurement --------------------------------------------------------------------------------


def measure(
    model: Model, opt: str, args: argparse.Namespace, root: Path, plugin: Path
) -> dict[str, Any]:
    from edgeloop.edge._footprint import estimate_latency
    from edgeloop.edge.targets import get_target

    t0 = time.perf_counter()
    elf = build_guest(model, opt, args.repeat, root)
    build_s = time.perf_counter() - t0
    symbols = _run([ARM_NM, str(elf)]).stdout.split("\n")
    mark = next(int(s.split()[0], 16) for s in symbols if s.endswith(" bench_mark"))
    stdout, qemu_s = run_qemu(elf, plugin, mark & ~1, elf.with_suffix(".log"))
    dumps = read_dumps(elf.with_suffix(".log"))
    if len(dumps) < 4:
        raise RuntimeError(f"{elf.name}: expected 3 marks and an exit dump, got {len(dumps)}")
    guest = stdout.strip()
    found = re.search(r"selftest (-?\d+) class (-?\d+) expected (-?\d+)", guest)
    ok = bool(found) and found.group(1) == "0" and found.group(2) == found.group(3)
    insns = disassemble(elf)
    sources = {n: c.decode() for n, c in model.files.items() if n.endswith(".c")}
    predict = attribute(region_counts(dumps[0], dumps[1], args.repeat), insns, sources)
    features = attribute(region_counts(dumps[1], dumps[2], args.repeat), insns, sources)
    target = get_target(TARGET)
    catalog_ms, catalog_cycles = estimate_latency(model.operations, target)
    rows = []
    for kind, ops in KINDS.items():
        n_ins = predict.instructions.get(kind, 0.0)
        if not n_ins and not any(model.operations.get(o, 0) for o in ops):
            continue
        counted = sum(model.operations.get(o, 0) for o in ops)
        catalog = 0.0 if kind == "unit_loop" else sum(catalog_cycles.get(o, 0.0) for o in ops)
        cycles = predict.cycles.get(kind, 0.0)
        rows.append(
            {
                "kind": kind,
                "counted_ops": counted,
                "instructions": n_ins,
                "est_cycles": cycles,
                "instructions_per_op": n_ins / counted if counted else None,
                "est_cycles_per_op": cycles / counted if counted else None,
                "catalog_cycles": catalog,
                "catalog_cycles_per_op": catalog / counted if counted and catalog else None,
            }
        )
    harness = predict.instructions.get("harness", 0.0)
    total_ins = sum(v for k, v in predict.instructions.items() if k != "harness")
    total_cycles = sum(v for k, v in predict.cycles.items() if k != "harness")
    feature_ins = sum(v for k, v in features.instructions.items() if k != "harness")
    return {
        "model": model.name,
        "opt": opt,
        "elf": str(elf),
        "guest_output": guest,
        "check_ok": ok,
        "rows": rows,
        "predict_instructions": total_ins,
        "predict_est_cycles": total_cycles,
        "harness_instructions_per_call": harness,
        "features_only_instructions": feature_ins,
        "features_only_est_cycles": sum(v for k, v in features.cycles.items() if k != "harness"),
        "catalog_cycles": sum(catalog_cycles.values()),
        "catalog_ms_at_64mhz": catalog_ms,
        "est_ms_at_64mhz": total_cycles / (target.clock_mhz * 1e3),
        "top_mnemonics": dict(predict.mnemonics.most_common(15)),
        "build_s": build_s,
        "qemu_s": qemu_s,
    }


def suggest(results: list[dict[str, Any]], catalog: dict[str, float]) -> dict[str, Any]:
    """Suggested cortex-m4f cycle costs: the median over models of the -O2 estimate per op
    (``requant`` includes the per-unit loop of the dense layer, which has no cost of its own).
    ``adds``, ``muls`` and ``compares`` cannot be told apart in the fused C loops: the catalog's
    values are scaled by the ``float_ops`` region's estimated / catalog cycles."""
    per_op: dict[str, list[tuple[float, float]]] = defaultdict(list)  # (instr/op, cycles/op)
    ratios: list[float] = []
    for r in results:
        if r["opt"] != "O2":
            continue
        rows = {row["kind"]: row for row in r["rows"]}
        if "unit_loop" in rows and "requant" in rows:
            for key in ("instructions", "est_cycles"):
                rows["requant"] = rows["requant"] | {
                    key: rows["requant"][key] + rows["unit_loop"][key]
                }
        for kind in ("mac", "requant", "quantize", "fft_butterflies", "logs"):
            row = rows.get(kind)
            if row and row["counted_ops"]:
                n = row["counted_ops"]
                per_op[kind].append((row["instructions"] / n, row["est_cycles"] / n))
        if rows.get("float_ops", {}).get("catalog_cycles"):
            ratios.append(rows["float_ops"]["est_cycles"] / rows["float_ops"]["catalog_cycles"])
    out: dict[str, Any] = {}
    for kind, values in per_op.items():
        instr = statistics.median(v[0] for v in values)
        cycles = statistics.median(v[1] for v in values)
        out[kind] = {
            "catalog": catalog.get(kind),
            "instructions_per_op": instr,
            "est_cycles_per_op": cycles,
            "suggested": _round(cycles),
        }
    if ratios:
        factor = statistics.median(ratios)
        for op in ("adds", "muls", "compares"):
            out[op] = {
                "catalog": catalog[op],
                "instructions_per_op": None,
                "est_cycles_per_op": None,
                "suggested": _round(catalog[op] * factor),
                "note": f"catalog x {factor:.2f} (float_ops est. / catalog cycles)",
            }
    return out


def _round(value: float) -> float:
    return round(value * 2) / 2 if value < 20 else float(round(value))


# output -------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_tables(results: list[dict[str, Any]], suggestion: dict[str, Any]) -> None:
    out = Console(width=WIDTH)
    for r in results:
        table = Table(
            title=(
                f"{r['model']} -{r['opt']}: {r['predict_instructions']:,.0f} instructions, "
                f"~{r['predict_est_cycles']:,.0f} est. cycles per predict; catalog "
                f"{r['catalog_cycles']:,.0f} cycles, with the suggested values "
                f"{r['suggested_table_cycles']:,.0f}; guest: {r['guest_output']}"
            ),
            title_justify="left",
        )
        for col in (
            "op kind",
            "counted ops",
            "instructions",
            "instr/op",
            "est. cycles/op",
            "catalog cycles/op",
        ):
            table.add_column(col, justify="left" if col == "op kind" else "right")
        for row in r["rows"]:
            table.add_row(
                row["kind"],
                f"{row['counted_ops']:,}" if row["counted_ops"] else "-",
                f"{row['instructions']:,.0f}",
                _fmt(row["instructions_per_op"], 2),
                _fmt(row["est_cycles_per_op"], 2),
                _fmt(row["catalog_cycles_per_op"], 1),
            )
        out.print(table)
    table = Table(
        title="suggested cortex-m4f cycles per op (-O2, median over models)", title_justify="left"
    )
    for col in ("op", "catalog", "instr/op", "est. cycles/op", "suggested", "note"):
        table.add_column(col, justify="left" if col in ("op", "note") else "right")
    for op, s in suggestion.items():
        table.add_row(
            op,
            _fmt(s["catalog"]),
            _fmt(s["instructions_per_op"], 2),
            _fmt(s["est_cycles_per_op"], 2),
            _fmt(s["suggested"]),
            s.get("note", ""),
        )
    out.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--opt", default="Os,O2", help="GCC optimisation levels (Os,O2)")
    parser.add_argument("--repeat", type=int, default=4, help="predict calls per region (4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="build here and keep it (default: a temp)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)
    opts = [o.strip().lstrip("-") for o in args.opt.split(",") if o.strip()]
    if args.repeat < 1 or not opts or not all(re.fullmatch(r"O[0-3sgz]|Ofast", o) for o in opts):
        parser.error("--repeat must be >= 1 and --opt a list like Os,O2")
    why = missing_tools()
    if why:
        console.print(f"qemu_calibrate: skipped: {'; '.join(why)}", highlight=False)
        return 0

    from edgeloop.edge.targets import get_target

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-qemu-") as tmp:
        root = (args.workdir or Path(tmp)).resolve()
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        models = [*digits_models(args.seed), vibration_model(args.seed)]
        setup_s = time.perf_counter() - t0
        models_by_name = {m.name: m for m in models}
        plugin_version, plugin, results = 1, build_plugin(root, 1), []
        for model in models:
            for opt in opts:
                try:
                    result = measure(model, opt, args, root, plugin)
                except RuntimeError as exc:
                    if plugin_version != 1 or "version" not in str(exc).lower():
                        raise
                    plugin_version, plugin = 2, build_plugin(root, 2)  # a QEMU newer than 8.0
                    result = measure(model, opt, args, root, plugin)
                console.log(
                    f"{model.name} -{opt}: {result['predict_instructions']:,.0f} instructions "
                    f"per predict, QEMU {result['qemu_s']:.2f} s"
                )
                results.append(result)
    catalog = dict(get_target(TARGET).cycles)
    suggestion = suggest(results, catalog)
    table = catalog | {op: s["suggested"] for op, s in suggestion.items()}
    for r in results:
        ops = models_by_name[r["model"]].operations
        r["suggested_table_cycles"] = sum(
            n * table[op if op in table else op.rpartition(".")[2]] for op, n in ops.items()
        )
    print_tables(results, suggestion)
    report = {
        "benchmark": "qemu_calibrate",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "versions": {
            "edgeloop": metadata.version("edgeloop"),
            "qemu": qemu_version(),
            "arm-none-eabi-gcc": _run([ARM_GCC, "-dumpfullversion"]).stdout.strip(),
            "plugin_api_version": plugin_version,
        },
        "method": {
            "machine": MACHINE,
            "counting": "TCG plugin benchmarks/qemu/insn_counter.c: inline per-address counters",
            "flags": [*M4_FLAGS, *M4_LINK, "-lm"],
            "target": TARGET,
        },
        "models": {
            m.name: {"description": m.description, "operations": m.operations} | m.info
            for m in models
        },
        "results": results,
        "catalog_cycles": catalog,
        "suggested": suggestion,
        "all_checks_ok": all(r["check_ok"] for r in results),
        "setup_s": setup_s,
        "wall_s": time.perf_counter() - started,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.log(f"wrote {args.output} in {report['wall_s']:.0f} s")
    return 0 if report["all_checks_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
