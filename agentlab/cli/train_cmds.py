"""`agentlab train` and `agentlab predict` (distill students)."""
