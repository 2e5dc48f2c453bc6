"""Small functions and modules emitted into ``model.py`` only when a converter needs them.

Each lives in ``templates/helpers/<name>.py.j2`` so the generated file stays standalone.
"""

# Helpers that call other helpers.
DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "pad_same": ("same_padding",),
}
