"""Scene-graph triplets from captions (LLM4SGG, METHODS.md §3): the pieces behind the `triplets` task.

- :mod:`~agentlab.triplets.text`: term normalisation, a small rule lemmatiser, FACTUAL gold strings.
- :mod:`~agentlab.triplets.extract`: the extraction schema and the direct / paraphrase chains.
- :mod:`~agentlab.triplets.align`: vocabulary alignment (rules, then an LLM, then embeddings), cached per term.
- :mod:`~agentlab.triplets.finalise`: drop unaligned, fine-grained predicates, dedupe, per-image graphs.
- :mod:`~agentlab.triplets.metrics`: triplet precision / recall / F1 and the predicate distribution.
- :mod:`~agentlab.triplets.baseline`: a rule-based pattern extractor (the benchmark's baseline).
"""
