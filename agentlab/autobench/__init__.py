"""AutoBencher (METHODS.md §6): search a document collection for salient, novel, difficult test categories.

Modules: `config` (recipe fields), `text` (normalising, matching, grounding, answer spans), `scoring`
(accuracy, difficulty, novelty, objective), `corpus` (BM25 retrieval and corpus salience), `propose`
(category proposals), `questions` (question-answer pairs from documents), `evaluate` (candidates answer,
graders grade), `leakage` (the leakage guard), `search` (the loop and its ablations), `outputs`
(leaderboard, trace, dataset card, plots).
"""
