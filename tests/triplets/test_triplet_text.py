"""Term normalisation, the rule lemmatiser and gold parsing (tables of noisy strings)."""

from __future__ import annotations

import pytest

from agentlab.triplets.text import (
    clean_triplet,
    format_factual,
    lemma,
    normalise,
    parse_factual,
    parse_gold,
    strip_auxiliaries,
    term_key,
)


@pytest.mark.parametrize("word,expected", [
    ("trees", "tree"), ("bushes", "bush"), ("boxes", "box"), ("glasses", "glass"), ("jeans", "jean"),
    ("leaves", "leaf"), ("men", "man"), ("flies", "fly"), ("skis", "ski"), ("bus", "bus"), ("grass", "grass"),
    ("sitting", "sit"), ("growing", "grow"), ("falling", "fall"), ("parked", "park"), ("dried", "dry"),
    ("wore", "wear"), ("has", "have"), ("is", "be"), ("lying", "lie"), ("this", "this"), ("tennis", "tennis"),
])
def test_lemma(word, expected):
    assert lemma(word) == expected


@pytest.mark.parametrize("a,b", [
    ("grow on", "growing on"), ("sit on", "sitting on"), ("lay on", "laying on"), ("ride", "riding"),
    ("attach to", "attached to"), ("tie to", "tied to"), ("wear", "wears"), ("have", "has"), ("Trees", "tree"),
    ("the shoes", "shoe"), ("use", "used"),
])
def test_term_key_matches_forms(a, b):
    assert term_key(a) == term_key(b)


@pytest.mark.parametrize("a,b", [("on", "in"), ("man", "men and"), ("sitting on", "standing on")])
def test_term_key_keeps_different_terms_apart(a, b):
    assert term_key(a) != term_key(b)


@pytest.mark.parametrize("raw,expected", [
    ("The  Man!", "man"), ("  a red-car. ", "red-car"), ("an", "an"), ("", ""), (None, ""), ("'s", "s"),
])
def test_normalise(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("is sitting on", "sitting on"), ("are being carried by", "carried by"), ("is", "is"),
    ("can be seen in", "seen in"), ("is about to eat", "eat"), ("has", "has"), ("on", "on"),
])
def test_strip_auxiliaries(raw, expected):
    assert strip_auxiliaries(raw) == expected


def test_clean_triplet_drops_empty_parts():
    assert clean_triplet("A Man", "riding", "the horse.") == ("man", "riding", "horse")
    assert clean_triplet("", "on", "table") is None and clean_triplet("cup", "  ", "table") is None


@pytest.mark.parametrize("text,triplets,entities", [
    ("( stove , is , white ) , ( stove , in , kitchen )", [("stove", "is", "white"), ("stove", "in", "kitchen")], []),
    ("( pole )", [], ["pole"]),
    ("( sky , is , partly cloudy ) , ( tree trunk )", [("sky", "is", "partly cloudy")], ["tree trunk"]),
    ("(a,on,b),(c , near , d)", [("a", "on", "b"), ("c", "near", "d")], []),
    ("( a , b )", [], []),  # malformed: skipped, not guessed
    ("", [], []), (None, [], []),
])
def test_parse_factual(text, triplets, entities):
    assert parse_factual(text) == (triplets, entities)


def test_format_factual_round_trips():
    ts = [("stove", "is", "white"), ("stove", "in", "kitchen")]
    assert parse_factual(format_factual(ts))[0] == ts


@pytest.mark.parametrize("value,fmt,expected", [
    ("( a , on , b )", "factual", [("a", "on", "b")]),
    ('[["a", "on", "b"]]', None, [("a", "on", "b")]),
    ('[{"subject": "a", "predicate": "on", "object": "b"}, ["x", ""]]', "json", [("a", "on", "b")]),
    ([["a", "on", "b"], ["bad"]], None, [("a", "on", "b")]),
    ("[not json", "json", []), (None, None, []),
])
def test_parse_gold(value, fmt, expected):
    assert parse_gold(value, fmt) == expected
