"""Synthetic query generation for retrieval (InPars / SPTAR, METHODS.md §4): BM25, IR metrics, labeled data."""
