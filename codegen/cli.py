"""Command line: ``keras2torch convert MODEL -o OUT_DIR [--verify] ...``."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

EXIT_OK, EXIT_VERIFY_FAILED, EXIT_BAD_INPUT = 0, 1, 2

EXAMPLES = """\
examples:
  keras2torch convert model.keras -o ported/ --verify
  keras2torch convert legacy.h5 -o ported/ --class-name Classifier --channels-first
"""


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="keras2torch",
        description="Port a Keras model to a readable PyTorch nn.Module and its state_dict.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"keras2torch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser(
        "convert",
        help="convert a .keras/.h5 model into OUT_DIR/model.py and OUT_DIR/model.pt",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    convert.add_argument("model", metavar="MODEL", help="a .keras or .h5 model file")
    convert.add_argument("-o", "--out", dest="out_dir", metavar="OUT_DIR", required=True)
    convert.add_argument("--class-name", metavar="NAME", help="name of the generated nn.Module")
    convert.add_argument(
        "--verify", action="store_true", help="run Keras and the port on random inputs and compare"
    )
    convert.add_argument(
        "--channels-first",
        action="store_true",
        help="forward() takes and returns image tensors as (N, C, H, W) instead of Keras's layout",
    )
    convert.add_argument(
        "--force", action="store_true", help="overwrite existing files with different content"
    )
    convert.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="largest allowed max|delta| / max(1, max|keras output|) (default 1e-4)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.command == "convert":
        return _convert(args)
    return EXIT_BAD_INPUT


def _convert(args) -> int:
    from .errors import ConversionError

    if args.class_name is not None and not args.class_name.isidentifier():
        print(f"keras2torch: error: --class-name {args.class_name!r} is not a Python identifier", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        from .api import convert

        result = convert(
            args.model,
            args.out_dir,
            class_name=args.class_name,
            verify=args.verify,
            channels_first=args.channels_first,
            force=args.force,
            tolerance=args.tolerance,
        )
    except ConversionError as exc:
        print(f"keras2torch: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("keras2torch: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    print(format_report(result))
    if result.verified and not result.passed:
        return EXIT_VERIFY_FAILED
    return EXIT_OK


def format_report(result) -> str:
    lines = [f"Converted {result.source}"]
    state = "written" if result.written else "unchanged (identical files already there)"
    lines.append(f"  {result.module_path}  class {result.class_name}  ({state})")
    lines.append(f"  {result.weights_path}  state_dict, {result.parameters:,} parameters")
    timing = ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items())
    lines.append(f"  time: {timing}")
    if result.verified:
        lines.append(f"Verification against Keras (random inputs, tolerance {result.tolerance:g}):")
        for e in result.errors:
            verdict = "ok" if e.passed else "FAILED"
            lines.append(f"  {e.name:<10} max|delta| {e.max_abs:.3g}  relative {e.max_rel:.3g}  {verdict}")
        lines.append("PASSED" if result.passed else "FAILED: the port does not match Keras")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
