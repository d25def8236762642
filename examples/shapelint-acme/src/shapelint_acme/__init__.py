"""ACME's team rules for shapelint: codes ACME1xx."""

__version__ = "0.1.0"
