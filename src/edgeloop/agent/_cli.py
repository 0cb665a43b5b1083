"""``edgeloop-agent``: the device agent's command line (argparse: the device has no Typer).

::

    edgeloop-agent --server https://fleet.example --state /var/lib/edgeloop --target rpi4 \\
        [--id pump-0001] [--attr firmware=1.4.2 --attr tags.line=b] \\
        [--enrollment-token TOK] [--serve-port 8765] [--collect-data] [--once]

Exit codes follow :mod:`edgeloop.errors` (0 success, 5 not accepted yet / refused token,
7 server unreachable, …); ``--once`` runs one check-in and exits.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

from edgeloop.agent._agent import DEFAULT_MAX_BUNDLE_BYTES, Agent
from edgeloop.errors import EdgeloopError, ValidationFailed

__all__ = ["build_parser", "main", "parse_attributes"]


def parse_attributes(pairs: Sequence[str]) -> dict[str, Any]:
    """``k=v`` pairs to the enrollment attributes; ``tags.line=b`` nests under ``tags``."""
    attributes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationFailed(f"--attr takes key=value, got {pair!r}")
        where = attributes
        *parents, leaf = key.split(".")
        for part in parents:
            nested = where.setdefault(part, {})
            if not isinstance(nested, dict):
                raise ValidationFailed(f"--attr {key}: {part!r} is already a value")
            where = nested
        where[leaf] = value
    return attributes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeloop-agent",
        description="The edgeloop device agent: OTA model updates into A/B slots, local "
        "inference and health telemetry.",
    )
    parser.add_argument("--server", required=True, help="the fleet server's URL")
    parser.add_argument("--state", required=True, help="the agent's state directory")
    parser.add_argument("--target", required=True, help="this device's target, e.g. rpi4")
    parser.add_argument("--id", dest="device_id", help="device id (default: host name + key)")
    parser.add_argument(
        "--attr", action="append", default=[], metavar="K=V", help="enrollment attribute"
    )
    parser.add_argument("--enrollment-token", help="a pre-shared enrollment token")
    parser.add_argument("--serve-port", type=int, help="serve local inference on this port")
    parser.add_argument("--serve-host", default="127.0.0.1", help="(default: %(default)s)")
    parser.add_argument("--once", action="store_true", help="check in once, then exit")
    parser.add_argument(
        "--telemetry-interval", type=float, default=3600.0, help="seconds (default: 3600)"
    )
    parser.add_argument(
        "--telemetry-buffer", type=int, default=1000, help="windows kept while offline"
    )
    parser.add_argument(
        "--max-bundle-bytes", type=int, default=DEFAULT_MAX_BUNDLE_BYTES, help="local cap"
    )
    parser.add_argument(
        "--collect-data",
        action="store_true",
        help="opt in to data collection: keep the last raw inputs on disk and upload them "
        "when the server asks (never otherwise)",
    )
    parser.add_argument(
        "--sample-buffer", type=int, default=256, help="raw inputs kept with --collect-data"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the agent; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    server = None
    try:
        agent = Agent(
            args.state,
            args.server,
            target=args.target,
            attributes=parse_attributes(args.attr) if args.attr else None,
            device_id=args.device_id,
            enrollment_token=args.enrollment_token,
            telemetry_interval=args.telemetry_interval,
            telemetry_buffer=args.telemetry_buffer,
            max_bundle_bytes=args.max_bundle_bytes,
            collect_data=args.collect_data,
            sample_buffer=args.sample_buffer,
        )
        agent.recover()
        if args.serve_port is not None:
            server = agent.serve(args.serve_host, args.serve_port)
            print(f"serving {server.url}/predict", file=sys.stderr, flush=True)
        if args.once:
            status = "pending" if agent.run_once() is None else "ok"
            print(f"{agent.device_id}: {status}", flush=True)
            return 0

        def _stop(signum: int, frame: FrameType | None) -> None:
            agent.stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        agent.run_forever()
        return 0
    except EdgeloopError as exc:
        print(f"edgeloop-agent: {exc.message}", file=sys.stderr)
        return exc.exit_code
    finally:
        if server is not None:
            server.close()
