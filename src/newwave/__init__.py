"""NewWave: find music by description."""

__version__ = "0.1.0"
