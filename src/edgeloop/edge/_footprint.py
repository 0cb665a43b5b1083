"""Footprint of a model on a target: flash, RAM and latency, and whether it fits.

Two ways to measure, by the target's ``deploy``:

* :func:`measure_c` compiles generated C for the target's core with ``arm-none-eabi-gcc``
  (``-std=c99 -Os -mthumb <flags> -ffunction-sections -fdata-sections``) and reads
  ``arm-none-eabi-size`` (Berkeley format) of the objects. Flash is ``text + data`` (size
  counts ``.rodata``, where the ``const`` weights live, as text; ``.data`` initialisers are
  stored in flash). RAM is ``data + bss + stack``: the activation arena and the feature
  buffers are ``static``, so they are already in ``bss`` and are reported as parts of it, not
  added again. The stack is the deepest call chain of the compiled code (frames from GCC's
  ``-fstack-usage`` ``.su`` files, call edges from ``-fcallgraph-info``), plus
  :data:`LIBRARY_CALL_STACK_BYTES` where a chain ends in a library function (``floorf``,
  ``__aeabi_fmul``, ...) and one exception frame (:func:`exception_frame_bytes`) for an
  interrupt arriving during inference. Sizes are those of the objects before linking: the
  library functions they call are listed in ``details["library_calls"]`` and counted in the
  firmware's reserve, with the startup code and the rest of the C library. Latency is
  ``sum(operations[op] * target.cycles[op]) / clock``. Cores GCC cannot build for here (the
  catalog's ``compiler_proxy``) get the Cortex-M4F build's flash and RAM.
* :func:`measure_onnx` runs the ONNX model with onnxruntime on this machine (one thread,
  batch 1, median of ``runs`` after a warm-up) and multiplies by ``target.onnx_factor``.
  Flash is the model's bytes; RAM is the model's bytes (onnxruntime keeps the weights in
  memory) plus the largest working set of one node: the bytes of its non-constant inputs and
  its outputs, taken from one run with every intermediate tensor exposed.

Example::

    fp = measure_c({"model.c": source}, get_target("nano33ble"),
                   operations=model.operations(), arena_bytes=model.arena_bytes())
    fp.verdict  # "fits", or "does not fit: RAM 300 kB > 192 kB"
"""

from __future__ import annotations

import importlib
import math
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np

from edgeloop.edge.targets import Target
from edgeloop.errors import BackendUnavailable, ValidationFailed

__all__ = [
    "FOOTPRINT_COLUMNS",
    "LIBRARY_CALL_STACK_BYTES",
    "METHOD_GCC",
    "METHOD_ONNX",
    "METHOD_PROXY",
    "Footprint",
    "LimitExceeded",
    "estimate_latency",
    "exception_frame_bytes",
    "footprint_table",
    "format_bytes",
    "measure_c",
    "measure_onnx",
]

METHOD_GCC = "arm-none-eabi-gcc"
METHOD_PROXY = "proxy:cortex-m4f"
METHOD_ONNX = "onnxruntime-measured×factor"  # noqa: RUF001 (the name says what it is)
GCC, SIZE = "arm-none-eabi-gcc", "arm-none-eabi-size"
CFLAGS = ("-std=c99", "-Os", "-mthumb")
SECTION_FLAGS = ("-ffunction-sections", "-fdata-sections", "-fstack-usage")
CALLGRAPH_FLAG = "-fcallgraph-info=su"
LIBRARY_CALL_STACK_BYTES = 64
"""Stack allowed for a library function at the end of a call chain: newlib's ``floorf``,
``sqrtf``, ``logf`` and libgcc's soft-float and 64-bit helpers are leaves using well under
64 bytes."""
_COMPILE_TIMEOUT_S = 300
_INSTALL = (
    "install the GNU Arm Embedded toolchain: apt-get install gcc-arm-none-eabi "
    "libnewlib-arm-none-eabi (or put arm-none-eabi-gcc on PATH)"
)

Resource = Literal["flash", "ram"]


def format_bytes(n: float) -> str:
    """``300 kB``, ``12.3 kB``, ``1.5 MB``: binary units (1 kB = 1024 bytes)."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if abs(n) >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value == round(value) else f"{value:.1f} {unit}"
    return f"{n:.0f} B"


@dataclass(frozen=True)
class LimitExceeded:
    """A limit the model breaks: ``needed_bytes`` of ``resource`` against ``available_bytes``."""

    resource: Resource
    needed_bytes: int
    available_bytes: int

    @property
    def over_bytes(self) -> int:
        return self.needed_bytes - self.available_bytes

    def describe(self) -> str:
        """``RAM 300 kB > 256 kB``."""
        label = "RAM" if self.resource == "ram" else "flash"
        needed, available = format_bytes(self.needed_bytes), format_bytes(self.available_bytes)
        return f"{label} {needed} > {available}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "needed_bytes": self.needed_bytes,
            "available_bytes": self.available_bytes,
            "over_bytes": self.over_bytes,
        }


@dataclass(frozen=True)
class Footprint:
    """What a model needs on one target, how that was measured, and whether it fits.

    ``flash_limit_bytes`` / ``ram_limit_bytes`` are the target's memory after its firmware's
    reserve. ``parts`` breaks the figures down: for C ``text``, ``data``, ``bss``, ``arena``
    and ``feature_buffers`` (both inside ``bss``) and ``stack``; for ONNX ``model`` and
    ``activations``. ``note`` says when the figures come from a proxy build. ``details`` holds
    the operations and cycles, flags, library calls, timings: whatever explains the figures.
    """

    target: str
    flash_bytes: int
    ram_bytes: int
    latency_ms: float
    method: str
    flash_limit_bytes: int
    ram_limit_bytes: int
    parts: Mapping[str, int] = field(default_factory=dict)
    note: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def exceeded(self) -> tuple[LimitExceeded, ...]:
        """The limits this footprint breaks (flash first), empty when it fits."""
        checks: tuple[tuple[Resource, int, int], ...] = (
            ("flash", self.flash_bytes, self.flash_limit_bytes),
            ("ram", self.ram_bytes, self.ram_limit_bytes),
        )
        return tuple(LimitExceeded(r, n, a) for r, n, a in checks if n > a)

    @property
    def fits(self) -> bool:
        return not self.exceeded

    @property
    def verdict(self) -> str:
        """``fits`` or ``does not fit: RAM 300 kB > 256 kB`` (every broken limit)."""
        if self.fits:
            return "fits"
        return "does not fit: " + "; ".join(e.describe() for e in self.exceeded)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; ``fits``, ``verdict`` and ``exceeded`` are included for readers and
        recomputed by :meth:`from_dict`."""
        return {
            "target": self.target,
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "latency_ms": self.latency_ms,
            "method": self.method,
            "flash_limit_bytes": self.flash_limit_bytes,
            "ram_limit_bytes": self.ram_limit_bytes,
            "parts": dict(self.parts),
            "note": self.note,
            "details": dict(self.details),
            "fits": self.fits,
            "verdict": self.verdict,
            "exceeded": [e.to_dict() for e in self.exceeded],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Footprint:
        try:
            return cls(
                target=str(data["target"]),
                flash_bytes=int(data["flash_bytes"]),
                ram_bytes=int(data["ram_bytes"]),
                latency_ms=float(data["latency_ms"]),
                method=str(data["method"]),
                flash_limit_bytes=int(data["flash_limit_bytes"]),
                ram_limit_bytes=int(data["ram_limit_bytes"]),
                parts={str(k): int(v) for k, v in dict(data.get("parts") or {}).items()},
                note=str(data.get("note", "")),
                details=dict(data.get("details") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationFailed(
                f"not a footprint: {exc!r}", details={"field": str(exc)}
            ) from exc


# ---- latency ------------------------------------------------------------------------------


def estimate_latency(
    operations: Mapping[str, int], target: Target
) -> tuple[float, dict[str, float]]:
    """``(milliseconds, cycles per operation name)`` of ``operations`` on ``target``.

    Every operation name needs a cost in ``target.cycles``: an unknown name is an error, so a
    new kind of operation cannot be silently free. A name may carry the part it belongs to
    as a prefix (``features.adds`` is priced as ``adds``), as :class:`CExport` counts them."""

    def price(op: str) -> str:
        return op if op in target.cycles else op.rpartition(".")[2]

    unknown = sorted(op for op in operations if price(op) not in target.cycles)
    if unknown:
        raise ValidationFailed(
            f"target {target.id!r} has no cycle cost for operation(s) {', '.join(unknown)}; "
            f"it prices: {', '.join(sorted(target.cycles)) or 'nothing'} (add them to the "
            "target's cycles in edgeloop-targets.yaml)",
            details={"target": target.id, "unknown_operations": unknown},
        )
    cycles: dict[str, float] = {}
    for op, count in operations.items():
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
            raise ValidationFailed(
                f"operation count {op!r} must be an integer >= 0, got {count!r}",
                details={"operation": op},
            )
        cycles[op] = int(count) * float(target.cycles[price(op)])
    return sum(cycles.values()) / (target.clock_mhz * 1e3), cycles


# ---- C: compile for the core and read the objects -----------------------------------------


def exception_frame_bytes(target: Target) -> int:
    """Stack an interrupt takes when it arrives during inference: 8 words, or 26 with the
    lazily stacked FP context of a hard-float core (Armv7-M architecture manual)."""
    return 104 if "-mfloat-abi=hard" in target.gcc_flags else 32


def _safe_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name:
        raise ValidationFailed(
            f"file name {name!r} must be a relative path inside the model's sources",
            details={"file": name},
        )
    return path


def _run(command: Sequence[str], cwd: Path, what: str) -> str:
    try:
        done = subprocess.run(
            list(command),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_COMPILE_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BackendUnavailable(f"{command[0]} is not installed; {_INSTALL}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BackendUnavailable(f"{what} took over {_COMPILE_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        # paths relative to the sources, not to our temporary directory
        message = (done.stderr or done.stdout).replace(f"{cwd / 'src'}/", "").strip()[-2000:]
        raise ValidationFailed(f"{what} failed:\n{message}", details={"command": list(command)})
    return done.stdout


def _parse_size(output: str) -> dict[str, int]:
    totals = {"text": 0, "data": 0, "bss": 0}
    for line in output.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and all(f.isdigit() for f in fields[:3]):
            for key, value in zip(("text", "data", "bss"), fields[:3], strict=False):
                totals[key] += int(value)
    return totals


_SU = re.compile(r"^(?P<where>.+):(?P<name>[^:\t]+)\t(?P<bytes>\d+)\t(?P<kind>\S+)")
_CI_EDGE = re.compile(r'edge: \{ sourcename: "(?P<src>[^"]+)" targetname: "(?P<dst>[^"]+)"')


@dataclass
class _CallGraph:
    frames: dict[str, int] = field(default_factory=dict)
    calls: dict[str, set[str]] = field(default_factory=dict)
    dynamic: set[str] = field(default_factory=set)

    def read(self, su_text: str, ci_text: str) -> None:
        for line in su_text.splitlines():
            match = _SU.match(line)
            if match:
                name = match["name"]
                self.frames[name] = max(self.frames.get(name, 0), int(match["bytes"]))
                if "dynamic" in match["kind"]:
                    self.dynamic.add(name)
        for match in _CI_EDGE.finditer(ci_text):
            self.calls.setdefault(match["src"], set()).add(match["dst"])

    def library_calls(self) -> list[str]:
        return sorted({c for cs in self.calls.values() for c in cs if c not in self.frames})

    def deepest(self) -> tuple[int, list[str], bool]:
        """Bytes and functions of the deepest chain from an uncalled function, and whether a
        recursive call was cut (its cycle is counted once)."""
        memo: dict[str, tuple[int, list[str]]] = {}
        recursive = False

        def depth(name: str, active: frozenset[str]) -> tuple[int, list[str]]:
            nonlocal recursive
            if name not in self.frames:
                return LIBRARY_CALL_STACK_BYTES, [name]
            if name in memo:
                return memo[name]
            best: tuple[int, list[str]] = (0, [])
            for callee in sorted(self.calls.get(name, ())):
                if callee in active:
                    recursive = True
                    continue
                below = depth(callee, active | {callee})
                best = max(best, below, key=lambda b: b[0])
            result = (self.frames[name] + best[0], [name, *best[1]])
            memo[name] = result
            return result

        called = {c for cs in self.calls.values() for c in cs}
        roots = [f for f in sorted(self.frames) if f not in called] or sorted(self.frames)
        chains = [depth(root, frozenset({root})) for root in roots]
        bytes_, chain = max(chains, key=lambda c: c[0], default=(0, []))
        return bytes_, chain, recursive


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackendUnavailable(
            f"{name} is not installed, so flash and RAM cannot be measured; {_INSTALL}",
            details={"tool": name},
        )
    return path


def measure_c(
    files: Mapping[str, bytes],
    target: Target,
    *,
    operations: Mapping[str, int],
    arena_bytes: int,
    feature_buffer_bytes: int = 0,
) -> Footprint:
    """Compile ``files`` (every ``.c``; headers next to them) for ``target`` and measure.

    ``operations`` are counted operations per inference (the model's, plus the feature
    blocks' if the device computes them); ``arena_bytes`` and ``feature_buffer_bytes`` are the
    static buffers the sources declare, reported as parts of ``bss``. Should ``bss`` be
    smaller than the two (the application provides them), the missing bytes are added."""
    if target.deploy != "c":
        raise ValidationFailed(
            f"target {target.id!r} deploys ONNX, not C; use measure_onnx",
            details={"target": target.id},
        )
    for name, value in (
        ("arena_bytes", arena_bytes),
        ("feature_buffer_bytes", feature_buffer_bytes),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationFailed(f"{name} must be an integer >= 0, got {value!r}")
    latency_ms, cycles = estimate_latency(operations, target)
    sources = sorted(n for n in files if n.endswith(".c"))
    if not sources:
        raise ValidationFailed(
            f"no .c file to compile among {sorted(files)}", details={"files": sorted(files)}
        )
    gcc, size = _tool(GCC), _tool(SIZE)
    flags = [*CFLAGS, *target.gcc_flags, *SECTION_FLAGS, CALLGRAPH_FLAG]
    graph = _CallGraph()
    with tempfile.TemporaryDirectory(prefix="edgeloop-footprint-") as tmp:
        root = Path(tmp)
        src, out = root / "src", root / "obj"
        out.mkdir()
        for name, data in files.items():
            path = src / _safe_path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        objects = []
        for i, name in enumerate(sources):
            obj = out / f"{i}_{PurePosixPath(name).stem}.o"
            command = [gcc, *flags, f"-I{src}", "-c", str(src / name), "-o", str(obj)]
            _run(command, root, f"compiling {name} for {target.id} ({' '.join(target.gcc_flags)})")
            objects.append(obj)
            su, ci = obj.with_suffix(".su"), obj.with_suffix(".ci")
            graph.read(
                su.read_text() if su.is_file() else "", ci.read_text() if ci.is_file() else ""
            )
        sizes = _parse_size(_run([size, *map(str, objects)], root, SIZE))
        version = _run([gcc, "-dumpfullversion"], root, GCC).strip()
    chain_bytes, chain, recursive = graph.deepest()
    stack = chain_bytes + exception_frame_bytes(target)
    buffers = arena_bytes + feature_buffer_bytes
    ram = sizes["data"] + max(sizes["bss"], buffers) + stack
    proxy = bool(target.compiler_proxy)
    details: dict[str, Any] = {
        "operations": {op: int(n) for op, n in operations.items()},
        "cycles": cycles,
        "total_cycles": sum(cycles.values()),
        "clock_mhz": target.clock_mhz,
        "compiler": f"{GCC} {version}",
        "flags": flags,
        "sources": sources,
        "stack_chain": chain,
        "library_calls": graph.library_calls(),
        "buffers_in_bss": sizes["bss"] >= buffers,
    }
    if recursive:
        details["warning"] = "recursive calls: the stack estimate counts each cycle once"
    if graph.dynamic:
        details["dynamic_stack"] = sorted(graph.dynamic)
    return Footprint(
        target=target.id,
        flash_bytes=sizes["text"] + sizes["data"],
        ram_bytes=ram,
        latency_ms=latency_ms,
        method=METHOD_PROXY if proxy else METHOD_GCC,
        flash_limit_bytes=target.flash_limit_bytes,
        ram_limit_bytes=target.ram_limit_bytes,
        parts={
            "text": sizes["text"],
            "data": sizes["data"],
            "bss": sizes["bss"],
            "arena": arena_bytes,
            "feature_buffers": feature_buffer_bytes,
            "stack": stack,
        },
        note=target.compiler_proxy,
        details=details,
    )


# ---- ONNX: run it here, scale by the target's factor ---------------------------------------

_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


def _activation_bytes(onnx_bytes: bytes, feed: Mapping[str, np.ndarray]) -> tuple[int, str]:
    """The largest ``inputs + outputs`` of one node (constants excluded), from a run with every
    intermediate tensor exposed as an output; ``(bytes, node name)``."""
    import onnx

    ort = _onnxruntime()
    model = onnx.load_from_string(onnx_bytes)
    constants = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            constants.update(node.output)
    exposed = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in exposed and name not in constants:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
                exposed.add(name)
    session = ort.InferenceSession(
        model.SerializeToString(), _session_options(), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    sizes = {
        n: int(np.asarray(v).nbytes)
        for n, v in zip(names, session.run(names, dict(feed)), strict=True)
    }
    sizes.update({n: int(v.nbytes) for n, v in feed.items()})
    best, where = 0, ""
    for node in model.graph.node:
        tensors = {t for t in (*node.input, *node.output) if t and t not in constants}
        total = sum(sizes.get(t, 0) for t in tensors)
        if total > best:
            best, where = total, node.name or node.op_type
    return best, where


def _onnxruntime() -> Any:
    """onnxruntime, imported on first use (it ships no type information)."""
    return importlib.import_module("onnxruntime")


def _session_options() -> Any:
    options = _onnxruntime().SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def measure_onnx(
    onnx_bytes: bytes,
    target: Target,
    *,
    input_shape: Sequence[int],
    runs: int = 200,
    warmup: int = 10,
) -> Footprint:
    """Time the ONNX model here on one sample of ``input_shape`` (without the batch axis:
    the model is fed ``(1, *input_shape)``) and scale to ``target``.

    Latency is the median of ``runs`` single-threaded runs after ``warmup`` runs, times
    ``target.onnx_factor``."""
    ort = _onnxruntime()

    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValidationFailed(f"runs must be an integer >= 1, got {runs!r}")
    shape = tuple(input_shape)
    if not all(isinstance(d, int | np.integer) and d >= 1 for d in shape):
        raise ValidationFailed(f"input_shape must hold positive integers, got {input_shape!r}")
    try:
        session = ort.InferenceSession(
            onnx_bytes, _session_options(), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ValidationFailed(f"not a loadable ONNX model: {exc}") from exc
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ValidationFailed(
            f"measure_onnx takes a model with one input, this one has {len(inputs)}: "
            f"{[i.name for i in inputs]}"
        )
    dtype = _ORT_DTYPES.get(inputs[0].type)
    if dtype is None:
        raise ValidationFailed(f"input type {inputs[0].type} is not supported")
    x = np.random.default_rng(0).standard_normal((1, *shape)).astype(dtype)
    feed = {inputs[0].name: x}
    try:
        for _ in range(warmup):
            session.run(None, feed)
        times = []
        for _ in range(runs):
            start = time.perf_counter_ns()
            session.run(None, feed)
            times.append(time.perf_counter_ns() - start)
    except Exception as exc:
        raise ValidationFailed(
            f"the ONNX model does not run on input {(1, *shape)}: {exc}"
        ) from exc
    median_ms = statistics.median(times) / 1e6
    try:
        activations, node = _activation_bytes(onnx_bytes, feed)
    except Exception:  # fall back to the input and the outputs of the real run
        outputs = session.run(None, feed)
        activations = int(x.nbytes) + sum(int(np.asarray(o).nbytes) for o in outputs)
        node = "(graph input and outputs)"
    model = len(onnx_bytes)
    return Footprint(
        target=target.id,
        flash_bytes=model,
        ram_bytes=model + activations,
        latency_ms=median_ms * target.onnx_factor,
        method=METHOD_ONNX,
        flash_limit_bytes=target.flash_limit_bytes,
        ram_limit_bytes=target.ram_limit_bytes,
        parts={"model": model, "activations": activations},
        note=target.compiler_proxy,
        details={
            "measured_median_ms": median_ms,
            "measured_p90_ms": float(np.percentile(times, 90)) / 1e6,
            "onnx_factor": target.onnx_factor,
            "runs": runs,
            "input_shape": [1, *map(int, shape)],
            "largest_node": node,
            "onnxruntime": ort.__version__,
        },
    )


# ---- rendering ------------------------------------------------------------------------------

FOOTPRINT_COLUMNS = ("target", "flash", "RAM", "latency", "verdict", "exceeded", "method", "note")


def _latency(ms: float) -> str:
    if not math.isfinite(ms):
        return "-"
    return f"{ms * 1000:.1f} µs" if ms < 1 else f"{ms:.2f} ms"


def footprint_table(footprints: Iterable[Footprint]) -> list[dict[str, str]]:
    """One row per footprint, keyed by :data:`FOOTPRINT_COLUMNS`: flash and RAM as ``used /
    available``, the verdict naming every broken limit, by how much each is exceeded (``RAM by
    108 kB``), and a note for proxy builds."""
    rows = []
    for fp in footprints:
        note = f"proxy build: {fp.note}" if fp.method == METHOD_PROXY and fp.note else fp.note
        rows.append(
            {
                "target": fp.target,
                "flash": f"{format_bytes(fp.flash_bytes)} / {format_bytes(fp.flash_limit_bytes)}",
                "RAM": f"{format_bytes(fp.ram_bytes)} / {format_bytes(fp.ram_limit_bytes)}",
                "latency": _latency(fp.latency_ms),
                "verdict": fp.verdict,
                "exceeded": "; ".join(
                    f"{'RAM' if e.resource == 'ram' else 'flash'} by {format_bytes(e.over_bytes)}"
                    for e in fp.exceeded
                )
                or "-",
                "method": fp.method,
                "note": note,
            }
        )
    return rows
