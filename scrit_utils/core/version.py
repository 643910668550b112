"""The package version (pyproject.toml's; a test keeps them equal), recorded in every manifest."""
__version__ = "0.1.0"
