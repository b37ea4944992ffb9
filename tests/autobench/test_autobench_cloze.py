"""Cloze questions from document sentences (text written for these tests)."""

from __future__ import annotations

from agentlab.autobench.cloze import cloze, fits, sentences

DOC = ("Insulin is a peptide hormone made by beta cells of the pancreatic islets. It lowers blood glucose. "
       "Mice lacking the receptor gain weight on a high-fat diet and beta cells fail. Trailing fragm")


def test_sentences_leave_out_a_cut_fragment():
    assert sentences(DOC)[-1].endswith("beta cells fail.") and len(sentences(DOC)) == 3


def test_cloze_blanks_the_phrase_in_its_first_fitting_sentence():
    assert cloze(DOC, "beta cells") == 'Which phrase fills the blank: "Insulin is a peptide hormone made by ____ of the pancreatic islets."'
    assert cloze(DOC, "high-fat diet") == ('Which phrase fills the blank: "Mice lacking the receptor gain weight on a ____ and '
                                           'beta cells fail."')
    assert not fits(DOC, "blood glucose")   # its sentence is too short to pin the blank down
    assert not fits(DOC, "fragm")           # only in the cut fragment
    assert "____ cells" in cloze(DOC, "beta") and not fits(DOC, "bet")  # whole words only


def test_a_title_line_is_its_own_sentence_and_bullets_are_not_sentences():
    doc = "Beta cells in islet failure\n\nInsulin is made by beta cells of the pancreatic islets in adult mice. • A • list"
    assert sentences(doc)[:2] == ["Beta cells in islet failure", "Insulin is made by beta cells of the pancreatic islets in adult mice."]
    assert not any("•" in s for s in sentences(doc + " Done."))
