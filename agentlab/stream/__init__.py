"""Streaming runs: the source read lazily in chunks, rows written to `data.jsonl` chunk by chunk as they finish.

* :mod:`agentlab.stream.source` reads a recipe's source in chunks (row order and ids as :func:`agentlab.sources.load_rows`);
* :mod:`agentlab.stream.sink` appends finished chunks to ``data.jsonl`` and journals each commit (resume after ``kill -9``);
* :mod:`agentlab.stream.calls` keeps the executor full across chunk boundaries (the call service's streaming side);
* :mod:`agentlab.stream.generate` / :mod:`agentlab.stream.label` are the streaming forms of the ``generate`` and ``label`` tasks;
* :mod:`agentlab.stream.run` runs a streaming task end to end.
"""
