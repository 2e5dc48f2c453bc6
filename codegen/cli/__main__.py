"""``python -m codegen.cli``: the ``keras2torch`` command."""

import sys

from .main import main

sys.exit(main())
