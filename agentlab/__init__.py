"""agentlab: turn unlabeled data into labeled datasets, benchmarks and small models by prompting LLMs."""

__version__ = "0.1.0"
