"""langchain backend (in progress)."""
