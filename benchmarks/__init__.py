"""keras2torch's benchmark suite: ``python -m benchmarks --help``."""
