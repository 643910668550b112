"""scrit_utils: the logic behind the SCRIT study notebooks (see README.md, "Layout")."""
from scrit_utils.core.version import __version__  # noqa: F401
