"""Pipelines benchmark: a 6-step pipeline in edgeloop and DVC: cold, unchanged, one param changed.

The pipeline: ingest -> validate -> features -> train -> evaluate -> register, written once as
plain functions in ``benchmarks/pipeline_steps/steps.py`` (``--rows`` x 10 seeded features,
range checks, a few numpy features, a scikit-learn ``LogisticRegression``, accuracy and F1, the
model and metrics written to ``registry/``). edgeloop runs them as steps declared in
``edgeloop.yaml``; DVC runs the same functions through ``pipeline_steps/dvc_stage.py``, a tiny
command per stage that reads and writes files, declared in ``dvc.yaml`` with ``params.yaml``
(both files are generated here from one description, :data:`STAGES`). DVC runs in its own venv
``.peers/dvc`` (built on first use by ``_peers.py``) with the same numpy, pandas, pyarrow and
scikit-learn pins as edgeloop, so both compute the same thing: the benchmark checks that both
wrote the same metrics.

For each tool, in a fresh temporary project (the step package copied in, a git repository with
one commit; edgeloop's workspace ``EDGELOOP_HOME=<project>/.edgeloop`` created by ``edgeloop
pipelines runs``, DVC's by ``dvc init``; setup is timed apart, for information), three cases,
each clock covering one whole command, interpreter start included:

* cold: ``edgeloop run six --json`` / ``dvc repro``;
* unchanged: the same command again (every step cached / "didn't change, skipping");
* changed: ``C`` (the regularisation of train) changed from 1.0 to 0.5: ``edgeloop run six
  --param C=0.5 --json`` / ``dvc repro`` after ``params.yaml`` is rewritten. Both should run
  only train, evaluate and register; the table says which steps each one ran.

Also, for information: edgeloop's unchanged re-run through the Python API
(``run_pipeline(ws, spec, params={"C": 0.5})`` in one process: the first call, step module
import included, and the median of ``--api-repeats`` more), and the CLIs' fixed cost (the
median wall time of ``python -c pass``, ``edgeloop --help`` and ``dvc --help``).

Each tool runs the three cases ``--repeats`` times (default 3, a fresh project each time;
edgeloop and DVC alternate and never run at the same time); medians are reported.

Target: the unchanged re-run through the CLI at least 3x faster than DVC's (ratio DVC/edgeloop
>= 3).

Run::

    .venv/bin/python benchmarks/pipelines.py                 # 50,000 rows, ~2 minutes
    .venv/bin/python benchmarks/pipelines.py --rows 5000 --repeats 1   # a quick check
    .venv/bin/python benchmarks/pipelines.py --profile       # + cProfile of the CLI re-run
    .venv/bin/python benchmarks/pipelines.py --check         # exit 1 if the target is missed

Prints a table and writes ``benchmarks/results/pipelines.json`` (and, with ``--profile``,
``pipelines-rerun.prof`` and ``pipelines-rerun.txt`` beside it). Nothing is cached between
runs except the peer venv.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

# _peers, peers/ and pipeline_steps/ sit next to this file (on the path when run as a script).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml
from rich.console import Console, JustifyMethod
from rich.table import Table

from _peers import PEER_SCRIPTS, PEERS, ensure_peer, peer_python, run_in_peer

HERE = Path(__file__).resolve().parent
STEP_PACKAGE = HERE / "pipeline_steps"
RESULTS = HERE / "results" / "pipelines.json"
BIN = Path(sys.executable).parent
EDGELOOP = BIN / "edgeloop"
PIPELINE = "six"
TARGET_UNCHANGED = 3.0
console = Console(stderr=True)

DVC = PEERS["dvc"]


# the pipeline, described once ----------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One step: ``inputs`` maps an argument to (upstream step, its output); ``params`` maps an
    argument to a pipeline param; ``literals`` are fixed arguments."""

    name: str
    outputs: tuple[str, ...]
    inputs: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    literals: Mapping[str, Any] = field(default_factory=dict)


STAGES: tuple[Stage, ...] = (
    Stage("ingest", ("table",), params={"rows": "rows", "seed": "seed"}),
    Stage("validate", ("table",), inputs={"table": ("ingest", "table")}),
    Stage("features", ("X", "y"), inputs={"table": ("validate", "table")}),
    Stage(
        "train",
        ("model",),
        inputs={"X": ("features", "X"), "y": ("features", "y")},
        params={"C": "C", "max_iter": "max_iter"},
    ),
    Stage(
        "evaluate",
        ("metrics",),
        inputs={"model": ("train", "model"), "X": ("features", "X"), "y": ("features", "y")},
    ),
    Stage(
        "register",
        ("summary",),
        inputs={"model": ("train", "model"), "metrics": ("evaluate", "metrics")},
        literals={"registry": "registry"},
    ),
)
STEP_NAMES = [s.name for s in STAGES]
CHANGED_STEPS = ["train", "evaluate", "register"]  # what changing C must re-run
# Where DVC's stages keep each output (edgeloop keeps them in its artifact store).
FILES: dict[tuple[str, str], str] = {
    ("ingest", "table"): "data/raw.parquet",
    ("validate", "table"): "data/valid.parquet",
    ("features", "X"): "data/X.npy",
    ("features", "y"): "data/y.npy",
    ("train", "model"): "models/model.pkl",
    ("evaluate", "metrics"): "metrics/eval.json",
    ("register", "summary"): "registry/summary.json",
}
DVC_CODE_DEPS = ["pipeline_steps/steps.py", "pipeline_steps/dvc_stage.py"]


def pipeline_params(rows: int, seed: int, c: float) -> dict[str, Any]:
    return {"rows": rows, "seed": seed, "C": c, "max_iter": 500}


def edgeloop_yaml(params: Mapping[str, Any]) -> str:
    steps: dict[str, Any] = {}
    for stage in STAGES:
        body: dict[str, Any] = {"run": f"pipeline_steps.steps:{stage.name}"}
        if stage.inputs:
            body["inputs"] = {k: f"steps.{s}.{o}" for k, (s, o) in stage.inputs.items()}
        step_params = {k: f"${{params.{p}}}" for k, p in stage.params.items()}
        step_params.update(stage.literals)
        if step_params:
            body["params"] = step_params
        body["outputs"] = list(stage.outputs)
        steps[stage.name] = body
    doc = {"pipelines": {PIPELINE: {"params": dict(params), "steps": steps}}}
    return yaml.safe_dump(doc, sort_keys=False)


def dvc_yaml() -> str:
    stages: dict[str, Any] = {}
    for stage in STAGES:
        cmd = ["python -m pipeline_steps.dvc_stage", stage.name]
        cmd += [f"--in {k}={FILES[src]}" for k, src in stage.inputs.items()]
        cmd += [f"--param {k}=${{{p}}}" for k, p in stage.params.items()]
        cmd += [f"--param {k}={v}" for k, v in stage.literals.items()]
        cmd += [f"--out {o}={FILES[(stage.name, o)]}" for o in stage.outputs]
        deps = [*DVC_CODE_DEPS, *dict.fromkeys(FILES[src] for src in stage.inputs.values())]
        body: dict[str, Any] = {"cmd": " ".join(cmd), "deps": deps}
        if stage.params:
            body["params"] = list(stage.params.values())
        outs = [FILES[(stage.name, o)] for o in stage.outputs]
        # register writes model.pkl and metrics.json beside its summary: the directory is its out
        body["outs"] = ["registry"] if stage.name == "register" else outs
        stages[stage.name] = body
    return yaml.safe_dump({"stages": stages}, sort_keys=False, width=1000)


def params_yaml(params: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(params), sort_keys=False)


def new_project(root: Path, name: str) -> Path:
    """A project directory holding a copy of the step package (no caches)."""
    project = root / name
    project.mkdir(parents=True)
    shutil.copytree(
        STEP_PACKAGE, project / STEP_PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__")
    )
    return project


# edgeloop side ------------------------------------------------------------------------------


def _edgeloop_env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOOP_")}
    env["EDGELOOP_HOME"] = str(project / ".edgeloop")
    return env


def _run(cmd: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(cmd), cwd=cwd, env=dict(env), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited with {done.returncode}:\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-3000:]}"
        )
    return done


def _git_commit(project: Path, env: Mapping[str, str]) -> None:
    _run(["git", "init", "-q"], project, env)
    _run(["git", "config", "user.name", "edgeloop-bench"], project, env)
    _run(["git", "config", "user.email", "bench@edgeloop.invalid"], project, env)
    _run(["git", "add", "-A"], project, env)
    _run(["git", "commit", "-q", "-m", "pipeline"], project, env)


def _metrics(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project / "registry" / "metrics.json").read_text())
    return data


def edgeloop_cli_run(project: Path, env: Mapping[str, str], extra: Sequence[str]) -> dict[str, Any]:
    cmd = [str(EDGELOOP), "run", PIPELINE, "--json", *extra]
    t0 = time.perf_counter()
    done = _run(cmd, project, env)
    seconds = time.perf_counter() - t0
    info = json.loads(done.stdout)
    if info["status"] != "succeeded":
        raise RuntimeError(f"edgeloop run {info['id']} {info['status']}: {info['error']}")
    return {
        "seconds": seconds,
        "ran": [s["name"] for s in info["steps"] if s["status"] == "succeeded"],
        "cached": [s["name"] for s in info["steps"] if s["status"] == "cached"],
        "in_run_pipeline_s": (info["ended_at"] - info["started_at"]) / 1000,
        "metrics": _metrics(project),
    }


def edgeloop_sequence(project: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = _edgeloop_env(project)
    (project / "edgeloop.yaml").write_text(
        edgeloop_yaml(pipeline_params(args.rows, args.seed, args.c)), encoding="utf-8"
    )
    (project / ".gitignore").write_text(".edgeloop/\nregistry/\n", encoding="utf-8")
    t0 = time.perf_counter()
    _git_commit(project, env)
    _run([str(EDGELOOP), "pipelines", "runs", "--json"], project, env)  # creates the workspace
    out: dict[str, Any] = {"setup_s": time.perf_counter() - t0}
    out["cold"] = edgeloop_cli_run(project, env, [])
    console.log(f"edgeloop: cold {out['cold']['seconds']:.2f} s")
    out["unchanged"] = edgeloop_cli_run(project, env, [])
    console.log(f"edgeloop: unchanged {out['unchanged']['seconds']:.2f} s")
    out["changed"] = edgeloop_cli_run(project, env, ["--param", f"C={args.changed_c}"])
    console.log(f"edgeloop: changed {out['changed']['seconds']:.2f} s")
    api = _run(
        [
            sys.executable,
            __file__,
            "--api-rerun",
            str(project),
            "--api-repeats",
            str(args.api_repeats),
            "--changed-c",
            str(args.changed_c),
        ],
        HERE,
        env,
    )
    out["api"] = json.loads(api.stdout.splitlines()[-1])
    console.log(
        f"edgeloop: API unchanged, first {out['api']['first_s'] * 1000:.0f} ms, "
        f"then {out['api']['warm_s'] * 1000:.0f} ms"
    )
    return out


def api_rerun(project: Path, repeats: int, changed_c: float) -> dict[str, Any]:
    """In this process: the unchanged re-run through the Python API (all six steps cached)."""
    os.chdir(project)
    sys.path.insert(0, str(project))
    t0 = time.perf_counter()
    from edgeloop.config import load_settings
    from edgeloop.pipelines import load_pipelines, run_pipeline
    from edgeloop.workspace import Workspace

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ws = Workspace.open(load_settings(home=project / ".edgeloop"))
    open_s = time.perf_counter() - t0
    spec = load_pipelines(project / "edgeloop.yaml")[PIPELINE]
    times: list[float] = []
    for _ in range(1 + repeats):
        t0 = time.perf_counter()
        run = run_pipeline(ws, spec, params={"C": changed_c})
        times.append(time.perf_counter() - t0)
        statuses = [s.status for s in run.steps]
        if run.status != "succeeded" or statuses != ["cached"] * len(STAGES):
            raise RuntimeError(f"the API re-run was not all cached: {run.status} {statuses}")
    return {
        "import_s": import_s,
        "open_s": open_s,
        "first_s": times[0],
        "warm_s": statistics.median(times[1:]) if repeats else times[0],
        "times_s": times,
    }


def profile_cli_rerun(project: Path, changed_c: float, out_dir: Path) -> dict[str, Any]:
    """cProfile of one more unchanged ``edgeloop run`` in ``project``: the top entries."""
    prof = out_dir / "pipelines-rerun.prof"
    cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "edgeloop"]
    t0 = time.perf_counter()
    _run([*cmd, "run", PIPELINE, "--param", f"C={changed_c}"], project, _edgeloop_env(project))
    seconds = time.perf_counter() - t0
    stats = pstats.Stats(str(prof))
    text = io.StringIO()
    pstats.Stats(str(prof), stream=text).sort_stats("cumulative").print_stats(60)
    (out_dir / "pipelines-rerun.txt").write_text(text.getvalue(), encoding="utf-8")
    wanted = {
        ("<frozen importlib._bootstrap>", "_find_and_load"): "imports (all, any depth)",
        ("_runner.py", "run_pipeline"): "run_pipeline",
        ("_runner.py", "code_digest"): "code_digest (imports the step module)",
        ("_lineage.py", "environment_digest"): "environment_digest",
        ("_lineage.py", "git_state"): "git_state",
        ("workspace.py", "open"): "Workspace.open",
        ("_runner.py", "get_pipeline_run"): "get_pipeline_run",
        ("_runner.py", "update_step"): "_Run.update_step (6 DB writes)",
        ("_spec.py", "load_pipelines"): "load_pipelines",
    }
    parts: dict[str, float] = {}
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in raw.items():
        for (suffix, name), label in wanted.items():
            if func == name and filename.endswith(suffix):
                parts[label] = max(parts.get(label, 0.0), ct)
    total = max(ct for (_cc, _nc, _tt, ct, _callers) in raw.values())
    return {"wall_s": seconds, "profiled_s": total, "parts_s": parts, "file": str(prof)}


# DVC side -----------------------------------------------------------------------------------


def dvc_sequence(project: Path, args: argparse.Namespace) -> dict[str, Any]:
    (project / "dvc.yaml").write_text(dvc_yaml(), encoding="utf-8")
    (project / "params.yaml").write_text(
        params_yaml(pipeline_params(args.rows, args.seed, args.c)), encoding="utf-8"
    )
    after = params_yaml(pipeline_params(args.rows, args.seed, args.changed_c))
    return run_in_peer(
        DVC.name, PEER_SCRIPTS / "dvc_pipeline.py", {"project": str(project), "params_after": after}
    )


# fixed costs --------------------------------------------------------------------------------


def _median_wall(cmd: Sequence[str], repeats: int, env: Mapping[str, str], cwd: Path) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _run(cmd, cwd, env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fixed_costs(root: Path, repeats: int) -> dict[str, float]:
    env = _edgeloop_env(root)
    dvc_env = {**env, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(root / ".dvc-site")}
    dvc_python = peer_python(DVC.name)
    return {
        "python -c pass (.venv)": _median_wall([sys.executable, "-c", "pass"], repeats, env, root),
        "edgeloop --help": _median_wall([str(EDGELOOP), "--help"], repeats, env, root),
        "python -c pass (.peers/dvc)": _median_wall(
            [str(dvc_python), "-c", "pass"], repeats, dvc_env, root
        ),
        "dvc --help": _median_wall(
            [str(dvc_python.parent / "dvc"), "--help"], repeats, dvc_env, root
        ),
    }


# report -------------------------------------------------------------------------------------

CASES = ("cold", "unchanged", "changed")


@dataclass(frozen=True)
class Row:
    case: str
    edgeloop_s: float
    dvc_s: float
    ratio: float  # DVC / edgeloop: above 1, edgeloop is faster
    target: str
    met: bool | None
    edgeloop_ran: list[str]
    dvc_ran: list[str]


def _median(sides: list[dict[str, Any]], case: str, key: str = "seconds") -> float:
    return float(statistics.median(side[case][key] for side in sides))


def compare(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[Row]:
    for mine, other in zip(ours, theirs, strict=True):
        for case in ("cold", "changed"):
            if mine[case]["metrics"] != other[case]["metrics"]:
                raise AssertionError(
                    f"{case}: edgeloop and DVC wrote different metrics: "
                    f"{mine[case]['metrics']} against {other[case]['metrics']}"
                )
    rows = []
    for case in CASES:
        el, dv = _median(ours, case), _median(theirs, case)
        ratio = dv / el
        is_target = case == "unchanged"
        rows.append(
            Row(
                case=case,
                edgeloop_s=el,
                dvc_s=dv,
                ratio=ratio,
                target=f">= {TARGET_UNCHANGED:g}x" if is_target else "-",
                met=ratio >= TARGET_UNCHANGED if is_target else None,
                edgeloop_ran=ours[-1][case]["ran"],
                dvc_ran=theirs[-1][case]["ran"],
            )
        )
    api = statistics.median(side["api"]["warm_s"] for side in ours)
    api_first = statistics.median(side["api"]["first_s"] for side in ours)
    dv = _median(theirs, "unchanged")
    rows.append(Row("unchanged, edgeloop API (info)", api, dv, dv / api, "-", None, [], []))
    rows.append(
        Row("unchanged, API 1st call (info)", api_first, dv, dv / api_first, "-", None, [], [])
    )
    return rows


def _ran(names: list[str]) -> str:
    if not names:
        return "none"
    return ", ".join(names) if len(names) < len(STAGES) else "all 6"


def print_table(
    rows: list[Row],
    ours: list[dict[str, Any]],
    theirs: list[dict[str, Any]],
    versions: Mapping[str, str],
    fixed: Mapping[str, float],
    rows_n: int,
) -> None:
    table = Table(
        title=f"6-step pipeline, {rows_n:,} rows: edgeloop {versions['edgeloop']} vs DVC "
        f"{versions['dvc']}, {os.cpu_count()} cores, median of {len(ours)}"
    )
    columns: list[tuple[str, JustifyMethod]] = [
        ("case", "left"),
        ("edgeloop s", "right"),
        ("DVC s", "right"),
        ("DVC/edgeloop", "right"),
        ("target", "left"),
        ("met", "center"),
        ("edgeloop ran", "left"),
        ("DVC ran", "left"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for r in rows:
        info = r.case.endswith("(info)")
        table.add_row(
            r.case,
            f"{r.edgeloop_s:.3f}",
            f"{r.dvc_s:.3f}",
            f"{r.ratio:.2f}x",
            r.target,
            "-" if r.met is None else ("[green]yes[/]" if r.met else "[red]NO[/]"),
            "-" if info else _ran(r.edgeloop_ran),
            "-" if info else _ran(r.dvc_ran),
        )
    out = Console(width=max(Console().width, 130))
    out.print(table)
    changed = next(r for r in rows if r.case == "changed")
    for tool, ran in (("edgeloop", changed.edgeloop_ran), ("DVC", changed.dvc_ran)):
        verdict = "as expected" if ran == CHANGED_STEPS else f"expected {CHANGED_STEPS}"
        out.print(f"  changed C: {tool} re-ran {', '.join(ran) or 'nothing'} ({verdict})")
    setup_el = statistics.median(side["setup_s"] for side in ours)
    setup_dv = statistics.median(side["setup_s"] for side in theirs)
    in_run = statistics.median(side["unchanged"]["in_run_pipeline_s"] for side in ours)
    api = ours[-1]["api"]
    out.print(
        f"  unchanged CLI re-run: its run record spans {in_run * 1000:.0f} ms (from after the "
        f"code, environment and git digests to the end); the rest is interpreter start, imports, "
        f"edgeloop.yaml and those digests (see --profile)",
        highlight=False,
    )
    out.print(
        f"  API (last project): imports {api['import_s']:.2f} s, Workspace.open "
        f"{api['open_s'] * 1000:.0f} ms, first run_pipeline {api['first_s'] * 1000:.0f} ms "
        f"(imports the step module), then {api['warm_s'] * 1000:.0f} ms",
        highlight=False,
    )
    out.print(
        f"  setup, not in the cases: edgeloop git init + commit + workspace {setup_el:.2f} s; "
        f"DVC git init + dvc init + commit {setup_dv:.2f} s",
        highlight=False,
    )
    out.print(
        "  fixed cost of a command (median): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in fixed.items()),
        highlight=False,
    )


def print_profile(profile: Mapping[str, Any]) -> None:
    out = Console(width=max(Console().width, 130))
    out.print(
        f"  cProfile of one more unchanged CLI re-run ({profile['wall_s']:.2f} s wall, "
        f"{profile['profiled_s']:.2f} s profiled; cumulative, overlapping):",
        highlight=False,
    )
    for label, seconds in sorted(profile["parts_s"].items(), key=lambda kv: -kv[1]):
        out.print(f"    {seconds:7.3f} s  {label}", highlight=False)
    out.print(f"    full listing: {Path(profile['file']).with_suffix('.txt')}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows ingest makes (50,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--c", type=float, default=1.0, help="train's C at first (1.0)")
    parser.add_argument("--changed-c", type=float, default=0.5, help="C afterwards (0.5)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh projects per tool (3)")
    parser.add_argument(
        "--api-repeats", type=int, default=5, help="API re-runs after the first (5)"
    )
    parser.add_argument("--fixed-repeats", type=int, default=5, help="runs of each --help (5)")
    parser.add_argument("--profile", action="store_true", help="cProfile the CLI re-run")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    parser.add_argument("--api-rerun", type=Path, help=argparse.SUPPRESS)  # internal
    args = parser.parse_args(argv)
    if args.api_rerun is not None:
        print(json.dumps(api_rerun(args.api_rerun.resolve(), args.api_repeats, args.changed_c)))
        return 0
    if args.c == args.changed_c:
        parser.error("--c and --changed-c must differ")

    started = time.perf_counter()
    load_before = os.getloadavg()
    console.log(f"preparing peer venv {DVC.requirements}")
    ensure_peer(DVC)
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    profile: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-pipelines-") as tmp:
        root = Path(tmp)
        console.log("fixed cost of a command")
        fixed = fixed_costs(root, args.fixed_repeats)
        for i in range(args.repeats):
            console.log(f"round {i + 1}/{args.repeats}: edgeloop")
            project = new_project(root, f"edgeloop-{i}")
            ours.append(edgeloop_sequence(project, args))
            if args.profile and i == args.repeats - 1:
                args.output.parent.mkdir(parents=True, exist_ok=True)
                profile = profile_cli_rerun(project, args.changed_c, args.output.parent)
            console.log(f"round {i + 1}/{args.repeats}: DVC")
            theirs.append(dvc_sequence(new_project(root, f"dvc-{i}"), args))
    versions = {"edgeloop": metadata.version("edgeloop"), "dvc": theirs[0]["dvc"]}
    rows = compare(ours, theirs)
    print_table(rows, ours, theirs, versions, fixed, args.rows)
    if profile is not None:
        print_profile(profile)
    met = all(r.met for r in rows if r.met is not None)
    report = {
        "benchmark": "pipelines",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "options": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k != "api_rerun"
        },
        "versions": versions,
        "cases": [row.__dict__ for row in rows],
        "fixed_cost_s": fixed,
        "edgeloop": ours,
        "dvc": theirs,
        "profile": profile,
        "all_targets_met": met,
        "wall_s": time.perf_counter() - started,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.log(f"wrote {args.output} in {report['wall_s']:.0f} s")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
