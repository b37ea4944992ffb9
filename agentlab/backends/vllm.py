"""vllm backend (in progress)."""
