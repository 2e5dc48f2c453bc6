"""Errors the tool reports to users as one clear message (no traceback)."""


class ConversionError(Exception):
    """The model cannot be ported as it stands."""


class InputError(ConversionError):
    """The input file or argument is unusable (missing, corrupt, wrong format)."""


class UnsupportedError(ConversionError):
    """Layers, operations or options without a converter; lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"cannot port this model: {len(problems)} layer(s) have no converter:\n{lines}"
        )
