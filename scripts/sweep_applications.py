"""Convert every keras.applications model and print a table of figures.

    .venv/bin/python scripts/sweep_applications.py [NAME ...]
"""

import os
import sys
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from applications import APPLICATIONS, convert_and_compare  # noqa: E402

from codegen.read.keras_import import import_keras  # noqa: E402


def main(names):
    keras = import_keras()
    print("| model | parameters | conversion s | max abs error | max abs error / max abs ref |")
    print("| --- | ---: | ---: | ---: | ---: |")
    failures = 0
    for name in names or sorted(APPLICATIONS):
        try:
            f = convert_and_compare(keras, name)
            rel = f["max_abs"] / max(f["max_ref"], 1e-30)
            ok = f["shape_ok"] and f["torch_parameters"] == f["parameters"] and rel <= 1e-4
            failures += not ok
            mark = "" if ok else " FAIL"
            print(f"| {name} | {f['parameters']:,} | {f['seconds']:.2f} | {f['max_abs']:.2e} | {rel:.2e}{mark} |", flush=True)
        except Exception as exc:
            failures += 1
            print(f"| {name} | | | error: {type(exc).__name__}: {str(exc).splitlines()[0][:150]} | |", flush=True)
            traceback.print_exc(file=sys.stderr)
        keras.backend.clear_session()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
