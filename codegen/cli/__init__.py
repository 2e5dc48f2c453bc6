"""The command line (``keras2torch``): argument parsing, commands, what the terminal shows.

Enters: ``argv``. Leaves: an exit status, a summary or JSON on stdout, one-line errors on
stderr. Everything it does goes through :mod:`codegen.api` and the stage packages below it.
"""

from .main import main

__all__ = ["main"]
