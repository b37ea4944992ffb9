"""Label models on synthetic label matrices with known labeler accuracies."""

from __future__ import annotations

import numpy as np
import pytest

from agentlab.labeling.aggregators import (
    AGGREGATORS,
    DawidSkene,
    MajorityVote,
    fit_all,
    make_aggregator,
    options_from_config,
)
from agentlab.labeling.matrix import duplicate_share
from agentlab.registry import UnknownKey

NAMES = ["auto", "dawid_skene", "dawid_skene_groups", "majority", "metal", "weighted"]
ACC = np.array([0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9])


def synth(n: int, acc, k: int, coverage: float, seed: int = 0):
    """Votes right with probability acc[j], else a uniformly random wrong class; abstain 1-coverage."""
    rng = np.random.default_rng(seed)
    acc = np.asarray(acc)
    y = rng.integers(0, k, n)
    right = rng.random((n, len(acc))) < acc
    wrong = (y[:, None] + rng.integers(1, k, (n, len(acc)))) % k
    L = np.where(right, y[:, None], wrong)
    return np.where(rng.random(L.shape) < coverage, L, -1), y


@pytest.fixture(scope="module")
def data3():
    return synth(6000, ACC, 3, 0.5)


def test_registry_lists_the_builtins_and_suggests():
    assert set(NAMES) <= set(AGGREGATORS.names())
    with pytest.raises(UnknownKey, match="did you mean 'dawid_skene'"):
        AGGREGATORS.get("dawid_skeen")


@pytest.mark.parametrize("name", NAMES)
def test_protocol_shapes(name, data3):
    L, _ = data3
    model = make_aggregator(name, 3, seed=1).fit(L)
    P = model.predict_proba(L[:50])
    assert P.shape == (50, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    pred = model.predict(L[:50])
    assert pred.shape == (50,) and set(np.unique(pred)) <= {0, 1, 2}
    assert model.labeler_accuracy().shape == (len(ACC),)


@pytest.mark.parametrize("name", ["dawid_skene", "weighted", "metal"])
def test_beats_majority_vote(name, data3):
    L, y = data3
    mv = (make_aggregator("majority", 3).fit(L).predict(L) == y).mean()
    acc = (make_aggregator(name, 3).fit(L).predict(L) == y).mean()
    assert acc >= mv


@pytest.mark.parametrize("k", [2, 3])
def test_dawid_skene_recovers_accuracies(k):
    L, _ = synth(8000, ACC, k, 0.5, seed=k)
    plain = DawidSkene(k, abstain_weight=1.0, accuracy_prior=0.0).fit(L)  # maximum likelihood, as written
    np.testing.assert_allclose(plain.labeler_accuracy(), ACC, atol=0.03)
    assert 1 < plain.n_iter_ < 100
    # the defaults (tempered abstains, 50 pseudo-votes at 0.9) trade a small bias for stability
    np.testing.assert_allclose(DawidSkene(k).fit(L).labeler_accuracy(), ACC, atol=0.04)


@pytest.mark.parametrize("k", [2, 3])
def test_metal_recovers_accuracies(k):
    L, _ = synth(8000, ACC, k, 0.5, seed=k)
    model = make_aggregator("metal", k, prior_strength=0.01).fit(L)
    np.testing.assert_allclose(model.labeler_accuracy(), ACC, atol=0.04)


def test_dawid_skene_learns_asymmetric_confusions():
    # labeler 0 calls every class-1 example class 0: its confusion matrix must show it
    L, y = synth(6000, [0.8] * 5, 2, 0.9, seed=3)
    L[:, 0] = np.where(L[:, 0] >= 0, 0, -1)
    model = DawidSkene(2).fit(L)
    assert model.theta_[0, 0, 1] > 0.8  # P(vote 0 | y = 1)
    mv = (MajorityVote(2).fit(L).predict(L) == y).mean()
    assert (model.predict(L) == y).mean() > mv + 0.02


@pytest.mark.parametrize("options", [{"abstains": "labeler"}, {"abstains": "none"}, {"abstain_weight": 0.0}])
def test_abstain_models_agree_when_abstains_carry_no_information(data3, options):
    L, y = data3  # abstains here are random, so how they are modelled costs nothing
    default = (DawidSkene(3).fit(L).predict(L) == y).mean()
    other = (DawidSkene(3, **options).fit(L).predict(L) == y).mean()
    assert abs(default - other) < 0.01


def split_rules(n: int, rules_per_class, cover: float = 0.8, false: float = 0.02, seed: int = 0):
    """Keyword-style rules: each votes one class and abstains elsewhere. The rules of a class split
    it (a row of class c fires at most one of them, with probability `cover`); every rule misfires
    on rows of other classes with probability `false`."""
    rng = np.random.default_rng(seed)
    k, r = len(rules_per_class), np.asarray(rules_per_class)
    y = rng.integers(0, k, n)
    cls = np.repeat(np.arange(k), r)
    L = np.where((rng.random((n, len(cls))) < false) & (y[:, None] != cls), cls, -1)
    hit = np.flatnonzero(rng.random(n) < cover)
    first = np.concatenate([[0], np.cumsum(r)[:-1]])
    L[hit, first[y[hit]] + (rng.random(len(hit)) * r[y[hit]]).astype(int)] = y[hit]
    return L, y


@pytest.mark.parametrize("rules_per_class", [(1, 4, 4), (4, 4, 4), (2, 6, 3)])
def test_class_abstains_handle_rules_that_split_a_class(rules_per_class):
    # per-labeler abstain factors say "NUM's other rules stayed silent" and overrule the one vote
    L, y = split_rules(6000, rules_per_class, seed=1)
    mv = (MajorityVote(3).fit(L).predict(L) == y).mean()
    as_written = {"abstain_weight": 1.0, "accuracy_prior": 10.0}
    by_class = (DawidSkene(3, **as_written).fit(L).predict(L) == y).mean()
    textbook = (DawidSkene(3, abstains="labeler", **as_written).fit(L).predict(L) == y).mean()
    assert by_class > textbook + 0.1
    default = (DawidSkene(3).fit(L).predict(L) == y).mean()
    assert default > mv - 0.03


def test_identical_labelers_count_once(data3):
    L, _ = data3
    tripled = np.concatenate([L[:, :1], L[:, :1], L], axis=1)  # labeler 0 three times
    np.testing.assert_allclose(duplicate_share(tripled), [1 / 3] * 3 + [1] * (L.shape[1] - 1))
    once, thrice = DawidSkene(3).fit(L), DawidSkene(3).fit(tripled)
    np.testing.assert_allclose(thrice.predict_proba(tripled), once.predict_proba(L), atol=1e-9)
    np.testing.assert_allclose(thrice.labeler_accuracy()[:3], once.labeler_accuracy()[0])
    counted = DawidSkene(3, dedupe_labelers=False).fit(tripled).predict_proba(tripled)
    assert np.abs(counted - once.predict_proba(L)).max() > 0.05


def test_dawid_skene_is_deterministic_and_ignores_row_order(data3):
    L, _ = data3
    first = DawidSkene(3).fit(L).predict_proba(L)
    np.testing.assert_array_equal(DawidSkene(3).fit(L).predict_proba(L), first)
    order = np.random.default_rng(0).permutation(len(L))
    np.testing.assert_allclose(DawidSkene(3).fit(L[order]).predict_proba(L), first, atol=1e-8)


def test_dawid_skene_option_errors():
    with pytest.raises(ValueError, match="abstains must be one of"):
        DawidSkene(3, abstains="rows")
    with pytest.raises(ValueError, match="abstain_weight"):
        DawidSkene(3, abstain_weight=2)


def test_all_abstain_rows_get_the_class_prior(data3):
    L, _ = data3
    L = L.copy()
    L[:10] = -1
    for name in NAMES:
        P = make_aggregator(name, 3, class_prior=[0.2, 0.3, 0.5]).fit(L).predict_proba(L[:10])
        np.testing.assert_allclose(P, [[0.2, 0.3, 0.5]] * 10, err_msg=name)


def test_class_prior_is_kept_fixed_by_dawid_skene(data3):
    L, _ = data3
    model = DawidSkene(3, class_prior={0: 2, 1: 1, 2: 1}).fit(L)
    np.testing.assert_allclose(model.class_balance_, [0.5, 0.25, 0.25])


def test_majority_tie_break_is_seeded_and_deterministic():
    L = np.array([[0, 1], [1, 0], [0, 1], [-1, -1]] * 50)
    a = MajorityVote(2, seed=7).fit(L).predict(L)
    b = MajorityVote(2, seed=7).fit(L).predict(L)
    c = MajorityVote(2, seed=8).fit(L).predict(L)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert {0, 1} == set(a)


def test_tie_break_by_prior_and_by_abstaining():
    L = np.array([[0, 1], [1, 1], [-1, -1]])
    prior = MajorityVote(2, class_prior=[0.3, 0.7], tie_break="prior").fit(L)
    np.testing.assert_array_equal(prior.predict(L), [1, 1, 1])
    abst = MajorityVote(2, tie_break="abstain").fit(L)
    np.testing.assert_array_equal(abst.predict(L), [-1, 1, -1])
    np.testing.assert_allclose(abst.predict_proba(L)[0], [0.5, 0.5])


def test_majority_probabilities_are_vote_shares():
    L = np.array([[0, 0, 1], [2, -1, -1]])
    P = MajorityVote(3).fit(L).predict_proba(L)
    np.testing.assert_allclose(P, [[2 / 3, 1 / 3, 0], [0, 0, 1]])


def test_weighted_vote_uses_confidences():
    L, _ = synth(2000, [0.8, 0.8, 0.8], 2, 1.0, seed=4)
    model = make_aggregator("weighted", 2).fit(L)
    row, sure_of_first = np.array([[0, 1, 1]]), np.array([[1.0, 0.05, 0.05]])
    assert model.predict(row)[0] == 1  # two votes beat one
    assert model.predict(row, sure_of_first)[0] == 0  # unless they are unsure


def test_weighted_vote_downweights_a_bad_labeler():
    L, _ = synth(4000, [0.9, 0.85, 0.8, 0.35, 0.35], 2, 1.0, seed=5)
    model = make_aggregator("weighted", 2).fit(L)
    # below chance: the floor weight, so such a vote only breaks ties among the others
    assert model.weights_[3] < model.weights_[0] and model.weights_[4] == pytest.approx(model.min_weight)


@pytest.mark.parametrize("name", NAMES)
def test_degenerate_matrices_have_defined_behaviour(name):
    all_abstain = -np.ones((5, 3), dtype=int)
    P = make_aggregator(name, 2).fit(all_abstain).predict_proba(all_abstain)
    np.testing.assert_allclose(P, 0.5)
    one_class = np.array([[0, 0, -1], [0, -1, 0], [-1, -1, 0]] * 5)
    assert (make_aggregator(name, 2).fit(one_class).predict(one_class) == 0).all()
    one_labeler = np.array([[0], [1], [-1], [1]])
    pred = make_aggregator(name, 2).fit(one_labeler).predict(one_labeler)
    np.testing.assert_array_equal(pred[[0, 1, 3]], [0, 1, 1])


@pytest.mark.parametrize("L, k, message", [
    ([[0, 1]], 1, "cardinality must be >= 2"),
    ([[0, 1]], "2", "cardinality must be an integer"),
    ([[0.0, 1.0]], 2, "must hold integers"),
    ([[0, 2]], 2, r"found \[2\]"),
    ([[0, -2]], 2, r"found \[-2\]"),
    ([0, 1], 2, "must be 2-D"),
    (np.zeros((0, 3), int), 2, "is empty"),
])
def test_bad_inputs_raise_clear_errors(L, k, message):
    with pytest.raises(ValueError, match=message):
        make_aggregator("dawid_skene", 2).fit(L) if k == 2 else make_aggregator("dawid_skene", k)


def test_misuse_raises():
    model = make_aggregator("majority", 2)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict_proba([[0, 1]])
    model.fit([[0, 1], [1, 1]])
    with pytest.raises(ValueError, match="fitted with 2"):
        model.predict_proba([[0, 1, 1]])
    with pytest.raises(ValueError, match="shape"):
        model.fit([[0, 1]], W=[[1.0]])
    with pytest.raises(ValueError, match="unknown option"):
        make_aggregator("majority", 2, smoothing=1)
    with pytest.raises(ValueError, match="tie_break"):
        make_aggregator("majority", 2, tie_break="coin")
    with pytest.raises(ValueError, match="class_prior must have one entry per class"):
        make_aggregator("metal", 3, class_prior=[0.5, 0.5])


def test_fit_all_fits_every_model(data3):
    L, y = data3
    models = fit_all(L, 3, names=NAMES, seed=0, options={"dawid_skene": {"smoothing": 0.1}})
    assert sorted(models) == NAMES
    assert models["dawid_skene"].smoothing == 0.1
    assert all((m.predict(L) == y).mean() > 0.75 for m in models.values())


def test_options_from_config_maps_class_names():
    from agentlab.config.sections import AggregateConfig

    cfg = AggregateConfig(method="all", class_prior={"spam": 0.2, "ham": 0.8}, seed=3)
    opts = options_from_config(cfg, ["ham", "spam"])
    assert opts["class_prior"] == [0.8, 0.2] and opts["seed"] == 3
    with pytest.raises(ValueError, match="not classes"):
        options_from_config(AggregateConfig(class_prior={"eggs": 1.0}), ["ham", "spam"])


def test_duplicate_rows_are_merged_without_changing_results(monkeypatch):
    import agentlab.labeling.dawid_skene as agg

    L, _ = synth(3000, ACC[:4], 2, 0.6, seed=9)  # few distinct patterns: rows get merged
    merged = DawidSkene(2).fit(L)
    monkeypatch.setattr(agg, "dedupe_rows", lambda L: (L, np.arange(len(L)), np.ones(len(L), dtype=np.int64)))
    plain = DawidSkene(2).fit(L)
    np.testing.assert_allclose(merged.theta_, plain.theta_, atol=1e-9)
    np.testing.assert_allclose(merged.predict_proba(L), plain.predict_proba(L), atol=1e-9)
