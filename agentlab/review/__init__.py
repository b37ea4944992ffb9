"""Human review through Label Studio: pick the rows worth a person's time (`select.py`), show them (`tasks.py`),
talk to the server (`client.py`), and push/pull (`loop.py`)."""
