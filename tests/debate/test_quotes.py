"""Quoting debaters: candidate spans, the contrast that picks one, and the recentering of the judge's scores."""

from __future__ import annotations

import pytest

from agentlab.debate.quotes import MAX_SPANS, contrast, quote, spans


def test_spans_are_clauses_and_windows_of_the_text():
    text = "Great song. Please go in and see our Channel and subscribe :-). It would be nice\ufeff"
    out = spans(text, max_words=6)
    assert out[0] == "Great song."
    assert "Please go in and see our" in out and "and see our Channel and subscribe" in out  # 6-word windows, stride 3
    assert all(s in " ".join(text.split()) for s in out)  # verbatim, up to whitespace
    assert not any("\ufeff" in s for s in out)


def test_spans_skip_punctuation_and_empty_text_and_cap():
    assert spans(".") == [] and spans("") == [] and spans(None) == []
    assert spans("yes! yes! yes!") == ["yes!"]  # duplicates once
    long = " ".join(f"w{i}." for i in range(100))
    assert len(spans(long)) == MAX_SPANS


def test_contrast_picks_what_the_stance_raises_most():
    options = ["Great song.", "Subscribe to my channel!"]
    own = {"Great song.": -2.0, "Subscribe to my channel!": -3.0}  # the likelier span under "yes"...
    other = {"Great song.": -1.0, "Subscribe to my channel!": -6.0}  # ...is likelier still under "no"
    scores = contrast(own, [other], options)
    assert scores == pytest.approx([-1.0, 3.0])
    assert options[max(range(2), key=scores.__getitem__)] == "Subscribe to my channel!"
    assert contrast(own, [], options) == [-2.0, -3.0]
    assert quote("a b") == '"a b"'


def test_recentered_removes_the_mean_lean_over_rows():
    from agentlab.debate.run import Outcome, Verdict
    from agentlab.debate.score import recentered

    def out(scores, source="judge"):
        return Outcome([], Verdict("no", scores=scores), "no", source)

    debate = [out([-3.0, 0.0]), out([-1.0, 0.0]), out([-9.0, 0.0], source="refusal"), out(None)]
    single = [Verdict("yes", scores=[0.0, -1.0]), Verdict("no", scores=[-1.0, 0.0]), Verdict("yes", scores=[0.0, 0.0]), None]
    got = recentered(debate, single)
    # lean = mean(debate - single) over the two scored judge rows = ([-3, 1] + [0, 0]) / 2 = [-1.5, 0.5]
    assert got[0].verdict.scores == [-1.5, -0.5] and got[1].verdict.scores == [0.5, -0.5]
    assert got[2] is debate[2] and got[3] is debate[3]  # a refusal and an unscored row are left as they are
    assert recentered([out(None)], [None])[0].verdict.scores is None
