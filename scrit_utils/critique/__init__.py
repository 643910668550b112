"""critique floor."""
