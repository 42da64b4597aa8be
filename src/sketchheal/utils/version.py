"""The package version (one home: the package, checkpoints and release folders record it)."""

__version__ = "0.1.0"
