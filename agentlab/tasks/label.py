"""label task (in progress)."""
