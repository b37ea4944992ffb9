"""Category names: all-capitals names in sentence case, made-up run-together words dropped (names written for these tests)."""

from __future__ import annotations

import pytest

from agentlab.autobench.corpus import Corpus
from agentlab.autobench.propose import ODD_WORD_LEN, tidy_category


@pytest.mark.parametrize(("name", "tidy"), [("GENE EXPRESSION", "Gene expression"), ("DNA", "DNA"), ("  Cell   cycle ", "Cell cycle"),
                                            ("IL-6 SIGNALLING", "Il-6 signalling"), ("Circadian rhythms", "Circadian rhythms")])
def test_tidy_category(name, tidy):
    assert tidy_category(name) == tidy


def test_unknown_long_words_mark_a_made_up_category():
    corpus = Corpus([{"id": "a", "text": "Gene set enrichment of circadian transcription factors."},
                     {"id": "b", "text": "Transcriptional regulation in the liver."}])
    assert corpus.unknown_words("GENESETSUBRANGER", min_len=ODD_WORD_LEN) == ["genesetsubranger"]
    assert corpus.unknown_words("Circadian transcription", min_len=ODD_WORD_LEN) == []
    assert corpus.unknown_words("gene pathways", min_len=ODD_WORD_LEN) == []  # short words are not judged
