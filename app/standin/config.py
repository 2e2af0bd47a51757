"""Command-line options of `python -m app.standin`, parsed into one frozen `StandinConfig`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.standin.faults import FaultPlan, parse_faults
from app.standin.model_files import ModelFiles, load_model_files

DEFAULT_ROOT = Path("var/standin")


@dataclass(frozen=True)
class StandinConfig:
    host: str = "127.0.0.1"
    port: int = 8188
    output_dir: Path = DEFAULT_ROOT / "output"
    temp_dir: Path = DEFAULT_ROOT / "temp"
    input_dir: Path = DEFAULT_ROOT / "input"
    checkpoint_load_ms: float = 2000.0  # CheckpointLoaderSimple / UNETLoader, when not cached
    step_ms: float = 20.0  # per sampler step, reported as a `progress` event
    faults: FaultPlan = field(default_factory=FaultPlan)
    model_files: ModelFiles = field(default_factory=ModelFiles)
    log_level: str = "warning"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.standin",
        description="A ComfyUI 0.3.64 stand-in: real protocol, simulated model nodes.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--output-dir", type=Path, default=None, help="default var/standin/output")
    parser.add_argument("--temp-dir", type=Path, default=None, help="default OUTPUT/../temp")
    parser.add_argument("--input-dir", type=Path, default=None, help="default OUTPUT/../input")
    parser.add_argument("--checkpoint-load-ms", type=float, default=2000.0)
    parser.add_argument("--step-ms", type=float, default=20.0)
    parser.add_argument(
        "--faults", default="", help="e.g. fail:3,hang:2,die:4,reject:1,slow-view:500"
    )
    parser.add_argument("--models", type=Path, default=None, help="JSON: folder -> [file names]")
    parser.add_argument("--log-level", default="warning")
    return parser


def parse_config(argv: Sequence[str] | None = None) -> StandinConfig:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        faults = parse_faults(args.faults)
        model_files = load_model_files(args.models)
    except (ValueError, OSError) as ex:
        parser.error(str(ex))
    output_dir: Path = (args.output_dir or DEFAULT_ROOT / "output").resolve()
    return StandinConfig(
        host=args.host,
        port=args.port,
        output_dir=output_dir,
        temp_dir=(args.temp_dir or output_dir.parent / "temp").resolve(),
        input_dir=(args.input_dir or output_dir.parent / "input").resolve(),
        checkpoint_load_ms=max(args.checkpoint_load_ms, 0.0),
        step_ms=max(args.step_ms, 0.0),
        faults=faults,
        model_files=model_files,
        log_level=args.log_level,
    )
