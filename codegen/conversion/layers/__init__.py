"""Converters, one module per Keras layer family; each registers itself on import."""
