"""core floor."""
