"""Voice bot for municipal citizen-service phone lines."""

__version__ = "0.1.0"
