"""keras2torch: port Keras models to readable, standalone PyTorch source code."""

from ._version import __version__
from .api import ConversionResult, convert  # noqa: E402
from .errors import ConversionError, InputError, UnsupportedError  # noqa: E402

__all__ = [
    "ConversionError",
    "ConversionResult",
    "InputError",
    "UnsupportedError",
    "__version__",
    "convert",
]
