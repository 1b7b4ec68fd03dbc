"""tideloop's version (single source, read by setup.py)."""

__version__ = "0.1.0.dev0"
