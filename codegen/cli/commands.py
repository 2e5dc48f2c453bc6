"""Command-line parts for plugins, output modes and the ``inspect``/``layers`` commands.

Kept out of :mod:`codegen.cli` so that file stays a short list of commands: this module adds
``--plugin``, ``--allow-unsupported``, ``--quiet`` and ``--json`` to ``convert``, the progress
bar (stderr, terminals only), the end-of-run summary, and the guarantee that no traceback
reaches the user (``KERAS2TORCH_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

EXIT_OK, EXIT_VERIFY_FAILED, EXIT_BAD_INPUT, EXIT_INCONCLUSIVE = 0, 1, 2, 3

PLUGIN_HELP = (
    "a Python file or module registering converters for your own Keras layer classes "
    "(see README: Custom layers); may also define the Keras classes so that Keras can load "
    "and --verify them; repeatable"
)


def add_plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin",
        dest="plugins",
        action="append",
        default=[],
        metavar="FILE_OR_MODULE",
        help=PLUGIN_HELP,
    )


def add_inputs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inputs",
        metavar="FILE",
        default=None,
        help="check on your own data instead of random inputs (the best check a port can "
        "have): an .npz with one array per model input, named as the inputs or in order, or "
        "an .npy for a model with one input; any batch size, integer and boolean arrays "
        "included (needs --verify or --emit-test with convert)",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    group.add_argument(
        "--json", action="store_true", help="print a machine-readable JSON result on stdout"
    )


def add_convert_options(parser: argparse.ArgumentParser) -> None:
    add_plugin_option(parser)
    parser.add_argument(
        "--allow-unsupported",
        action="store_true",
        help="turn each layer without a converter into a skeleton nn.Module holding its "
        "weights, with a forward() for you to write (instead of stopping with an error)",
    )
    add_output_options(parser)


INSPECT_EXAMPLES = """\
examples:
  keras2torch inspect model.keras
  keras2torch inspect model.keras --plugin my_converters.py --json
"""

LAYERS_EXAMPLES = """\
examples:
  keras2torch layers
  keras2torch layers > docs/supported_layers.md    # regenerate the committed table
"""


def add_commands(commands) -> None:
    inspect = commands.add_parser(
        "inspect",
        help="show the layers, shapes and converters keras2torch sees in MODEL; writes nothing",
        description="Read MODEL and show every layer (nested models' too): class, output "
        "shape, parameters and the converter it gets, built-in, plugin, skeleton or none. "
        "A dry-run conversion in memory also finds options that cannot be ported. Nothing "
        "is written. Exit status: 0 when the model was read, 2 on bad input.",
        epilog=INSPECT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inspect.add_argument("model", metavar="MODEL", help="a .keras or .h5 model file")
    add_plugin_option(inspect)
    inspect.add_argument(
        "--allow-unsupported",
        action="store_true",
        help="show layers without a converter as the skeletons convert would make",
    )
    inspect.add_argument(
        "--reader", choices=("keras", "file"), default=None, help="how to read MODEL (as convert)"
    )
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    layers = commands.add_parser(
        "layers",
        help="print the table of supported Keras layers and keras.ops operations",
        description="Print the supported-layer table (Markdown), generated from the converter "
        "registry, plugins' converters included. docs/supported_layers.md is this output "
        "without plugins.",
        epilog=LAYERS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_plugin_option(layers)
    layers.add_argument("--json", action="store_true", help="print JSON instead of Markdown")


def run_command(args) -> int | None:
    """Run ``inspect`` or ``layers``; None for other commands."""
    if args.command == "inspect":
        return _guarded(args, _inspect)
    if args.command == "layers":
        return _guarded(args, _layers)
    return None


def _inspect(args) -> int:
    from codegen import progress
    from codegen.app.inspect import inspect_path

    from .inspect_view import format_inspection
    from .summary import dumps, use_color

    with progress.bar(enabled=progress.enabled_for(sys.stderr) and not args.json):
        progress.stage("reading")
        result = inspect_path(
            args.model,
            plugins=args.plugins,
            reader=args.reader,
            allow_unsupported=args.allow_unsupported,
        )
    if args.json:
        print(dumps(result.to_json()))
    else:
        print(printable(format_inspection(result, color=use_color(sys.stdout)), sys.stdout))
    return EXIT_OK


def _layers(args) -> int:
    from codegen.conversion.pipeline import converter_registry

    from .layer_table import markdown, table_rows
    from .summary import dumps

    registry = converter_registry(args.plugins)
    if args.json:
        layers, ops = table_rows(registry)
        keys = ("name", "converter", "layout", "note")
        print(
            dumps(
                {
                    "layers": [dict(zip(keys, r)) for r in layers],
                    "operations": [dict(zip(keys, r)) for r in ops],
                }
            )
        )
    else:
        sys.stdout.write(markdown(registry))
    return EXIT_OK


def _guarded(args, function) -> int:
    from codegen.errors import ConversionError

    try:
        return function(args)
    except ConversionError as exc:
        return fail(args, exc)
    except KeyboardInterrupt:
        print("keras2torch: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback: one line, and how to see more
        return unexpected(args, exc)


# -- convert ------------------------------------------------------------------------------
@contextlib.contextmanager
def convert_session(args):
    """The progress bar (stderr, only on a terminal, not with --quiet/--json)."""
    from codegen import progress

    args.started = time.perf_counter()
    quiet = getattr(args, "quiet", False) or getattr(args, "json", False)
    with progress.bar(enabled=progress.enabled_for(sys.stderr) and not quiet):
        progress.stage("reading")
        yield


def fail(args, exc, status: int = EXIT_BAD_INPUT) -> int:
    """One clear error on stderr (and the JSON error object on stdout with --json)."""
    from codegen import progress
    from codegen.errors import UnsupportedError

    from .summary import dumps, error_json

    progress.clear()
    hint = ""
    if isinstance(exc, UnsupportedError) and not getattr(args, "allow_unsupported", True):
        hint = (
            "\nhint: a converter plugin (--plugin, see the README) can port your own layer "
            "classes; --allow-unsupported turns layers without a converter into skeleton "
            "modules to finish by hand"
        )
    print(f"keras2torch: error: {exc}{hint}", file=sys.stderr)
    if getattr(args, "json", False):
        print(dumps(error_json(str(exc), status, getattr(exc, "problems", None))))
    return status


def unexpected(args, exc: BaseException) -> int:
    if isinstance(exc, BrokenPipeError):  # `keras2torch inspect m.keras | head`: not an error
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    if os.environ.get("KERAS2TORCH_DEBUG"):
        raise exc
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    message = (
        f"unexpected {type(exc).__name__}{': ' + text[:300] if text else ''} "
        "(a damaged input, or a bug in keras2torch: set KERAS2TORCH_DEBUG=1 to see the traceback)"
    )
    return fail(args, message)


def finish(args, result) -> int:
    """Print the summary (or JSON) and return the exit status."""
    from .summary import dumps, format_summary, result_json, use_color

    status = {None: EXIT_OK, "passed": EXIT_OK, "inconclusive": EXIT_INCONCLUSIVE}.get(
        result.outcome, EXIT_VERIFY_FAILED
    )
    started = getattr(args, "started", None)
    elapsed = None if started is None else time.perf_counter() - started
    if getattr(args, "json", False):
        data = result_json(result, status)
        if elapsed is not None:
            data["wall_seconds"] = round(elapsed, 3)
        print(dumps(data))
    elif not getattr(args, "quiet", False):
        text = format_summary(result, color=use_color(sys.stdout), elapsed=elapsed)
        print(printable(text, sys.stdout))
    return status


def printable(text: str, stream) -> str:
    """``text``, with ASCII stand-ins for its symbols if the stream cannot encode them."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
        return text
    except (UnicodeEncodeError, LookupError):
        for symbol, ascii_ in (("✓", "ok"), ("✗", "x"), ("→", "->"), ("·", "-"), ("Δ", "delta")):
            text = text.replace(symbol, ascii_)
        return text.encode(encoding, "replace").decode(encoding, "replace")
