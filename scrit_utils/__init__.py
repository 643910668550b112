"""scrit_utils: the logic behind the SCRIT study notebooks (see README.md)."""
__version__ = "0.1.0"
