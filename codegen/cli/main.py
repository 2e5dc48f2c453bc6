"""Command line: ``keras2torch convert MODEL -o OUT_DIR [--verify] ...``."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

EXIT_OK, EXIT_VERIFY_FAILED, EXIT_BAD_INPUT, EXIT_INCONCLUSIVE = 0, 1, 2, 3

EXIT_STATUS = """\
exit status:
  0  success; a verified port matches Keras within the tolerance
  1  verification FAILED: the port is outside the tolerance and outside float32 noise
  2  bad input: a missing or damaged file, unsupported layers, inputs that do not fit
  3  INCONCLUSIVE: outside the tolerance, but Keras is about as far from the port run
     in float64 as the float32 port is: |keras - port64| <= 10 |port32 - port64| +
     tolerance (relative to max(1, max|keras|), per output); the model amplifies
     float32 rounding on these inputs: verify with --inputs on real data
"""

EXAMPLES = """\
examples:
  keras2torch convert model.keras -o ported/ --verify --inputs batch.npz
  keras2torch convert model.keras -o ported/ --verify
  keras2torch convert model.keras -o ported/ --weights-format safetensors
  keras2torch convert legacy.h5 -o ported/ --class-name Classifier --channels-first
  keras2torch convert model.h5 -o ported/ --reader keras
  keras2torch convert model.keras -o ported/ --plugin my_converters.py --verify
  keras2torch convert model.keras -o ported/ --allow-unsupported --json
  keras2torch inspect model.keras
  keras2torch layers
"""


def build_parser() -> argparse.ArgumentParser:
    from codegen._version import __version__

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
        epilog=EXAMPLES + "\n" + EXIT_STATUS,
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
        "--reader",
        choices=("keras", "file"),
        default=None,
        help="how to read MODEL: 'file' with h5py alone (no TensorFlow; also reads the tf.keras/"
        "Keras 2 .h5 files Keras 3 refuses), 'keras' with Keras 3; default: 'file', falling "
        "back to Keras for what that reader cannot reproduce",
    )
    convert.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="largest allowed max|delta| / max(1, max|keras output|) (default 1e-4)",
    )
    convert.add_argument(
        "--flat",
        action="store_true",
        help="one attribute and one forward line per Keras layer, a 1:1 transcript of the "
        "Keras graph (default: repeated blocks become classes, chains of them stages)",
    )
    convert.add_argument("--structured", action="store_true", help=argparse.SUPPRESS)
    convert.add_argument(
        "--emit-test",
        action="store_true",
        help="also write OUT_DIR/test_model.py and OUT_DIR/model_reference.npz: a pytest check "
        "of model.py against Keras's outputs that needs only torch, numpy and pytest",
    )
    convert.add_argument(
        "--emit-train",
        action="store_true",
        help="also write OUT_DIR/train.py: the optimizer, loss and learning-rate schedule the "
        "Keras model was compiled with, as torch code, in a minimal training loop",
    )
    convert.add_argument(
        "--weights-format",
        choices=("pt", "safetensors"),
        default="pt",
        help="write the state_dict as OUT_DIR/model.pt (torch.save, default) or "
        "OUT_DIR/model.safetensors (no pickle: loading it runs no code)",
    )
    from .commands import add_commands, add_convert_options, add_inputs_option

    add_inputs_option(convert)
    add_convert_options(convert)  # --plugin, --allow-unsupported, --quiet, --json
    _add_verify_parser(commands)
    add_commands(commands)  # inspect, layers
    return parser


VERIFY_EXAMPLES = """\
examples:
  keras2torch verify model.keras ported/ --inputs batch.npz
  keras2torch verify model.keras ported/
  keras2torch verify model.keras ported/ --tolerance 1e-3
"""


def _add_verify_parser(commands) -> None:
    verify = commands.add_parser(
        "verify",
        help="compare OUT_DIR/model.py + model.pt (edited or not) with the Keras model, "
        "layer by layer; writes OUT_DIR/REPORT.md",
        description="Run MODEL in Keras and OUT_DIR/model.py with OUT_DIR/model.pt (edited or\n"
        "not) on the same random inputs. Compares the final outputs, in inference and\n"
        "(where deterministic) training mode, and every layer's output wherever model.py\n"
        "still has the generated structure; writes OUT_DIR/REPORT.md.\n"
        "Reads model.pt or model.safetensors, whichever the conversion wrote.\n"
        "Exit status: 0 passed, 1 failed, 2 bad input, 3 inconclusive (see below).",
        epilog=VERIFY_EXAMPLES + "\n" + EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("model", metavar="MODEL", help="the .keras or .h5 model file")
    verify.add_argument("out_dir", metavar="OUT_DIR", help="a folder keras2torch convert wrote")
    verify.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="largest allowed max|delta| / max(1, max|keras output|) (default 1e-4)",
    )
    verify.add_argument(
        "--class-name", metavar="NAME", help="the nn.Module's name (default: read from model.py)"
    )
    verify.add_argument(
        "--channels-first",
        action="store_true",
        default=None,
        help="forward() takes channels-first tensors (default: read from model.py)",
    )
    verify.add_argument(
        "--force", action="store_true", help="overwrite a REPORT.md that keras2torch did not write"
    )
    from .commands import add_inputs_option, add_plugin_option

    add_inputs_option(verify)
    add_plugin_option(verify)  # the converters and Keras classes the conversion used


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.command == "convert":
        return _convert(args)
    if args.command == "verify":
        return _verify(args)
    from .commands import run_command

    status = run_command(args)
    return EXIT_BAD_INPUT if status is None else status


def _convert(args) -> int:
    from codegen.errors import ConversionError

    from .commands import convert_session, fail, finish, unexpected

    if args.class_name is not None and not args.class_name.isidentifier():
        return fail(args, f"--class-name {args.class_name!r} is not a Python identifier")
    try:
        from codegen.api import convert

        with convert_session(args):  # the progress bar, on a terminal
            result = convert(
                args.model,
                args.out_dir,
                class_name=args.class_name,
                verify=args.verify,
                channels_first=args.channels_first,
                force=args.force,
                tolerance=args.tolerance,
                reader=args.reader,
                emit_test=args.emit_test,
                emit_train=args.emit_train,
                plugins=args.plugins,
                allow_unsupported=args.allow_unsupported,
                structured=not args.flat,
                inputs=args.inputs,
                weights_format=args.weights_format,
            )
    except ConversionError as exc:
        return fail(args, exc)
    except KeyboardInterrupt:
        print("keras2torch: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    except Exception as exc:  # no traceback reaches the user (KERAS2TORCH_DEBUG=1 shows it)
        return unexpected(args, exc)
    return finish(args, result)  # the summary (or --json); exit 1 if verification failed


def _verify(args) -> int:
    from codegen.errors import ConversionError

    if args.class_name is not None and not args.class_name.isidentifier():
        print(
            f"keras2torch: error: --class-name {args.class_name!r} is not a Python identifier",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        from codegen.api import verify_folder
        from codegen.check.markdown import format_verify

        report, path = verify_folder(
            args.model,
            args.out_dir,
            tolerance=args.tolerance,
            class_name=args.class_name,
            channels_first=args.channels_first,
            force=args.force,
            plugins=args.plugins,
            inputs=args.inputs,
        )
    except ConversionError as exc:
        print(f"keras2torch: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("keras2torch: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    print(format_verify(report, path))
    return {"passed": EXIT_OK, "inconclusive": EXIT_INCONCLUSIVE}.get(
        report.outcome, EXIT_VERIFY_FAILED
    )


if __name__ == "__main__":
    sys.exit(main())
