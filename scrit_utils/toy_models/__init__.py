"""toy_models floor."""
