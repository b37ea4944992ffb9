"""Publishing a run: its dataset card (`card.py`), the Hub's metadata rules (`metadata.py`) and `agentlab push` (`push.py`)."""
