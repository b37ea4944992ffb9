"""Fixtures for the SPTAR tests: a small labeled corpus (the tiny causal LM is in tests/conftest.py)."""

from __future__ import annotations

import pytest

DOCS = {
    "d1": "Aspirin reduces the risk of heart attack in adults over fifty.",
    "d2": "Vitamin D deficiency is linked to weaker bones and fractures.",
    "d3": "Regular exercise lowers blood pressure in hypertensive patients.",
    "d4": "Smoking increases the incidence of lung cancer markedly.",
    "d5": "Coffee consumption is associated with lower liver disease risk.",
    "d6": "Sleep deprivation impairs memory consolidation in students.",
}
PAIRS = [("aspirin and heart attacks", "d1"), ("vitamin d and bone fractures", "d2"),
         ("does exercise lower blood pressure", "d3"), ("smoking and lung cancer", "d4"),
         ("coffee and the liver", "d5"), ("does sleep loss hurt memory", "d6")]


@pytest.fixture
def docs() -> dict[str, str]:
    """Doc id -> text."""
    return dict(DOCS)
