"""openai backend (in progress)."""
