"""The embedding student: MiniLM sentence embeddings + a soft-label logistic-regression head."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad

from agentlab.distill.base import load_student, make_student
from agentlab.distill.embedding import C_GRID, fit_head, softmax
from agentlab.errors import TrainingError
from tests.distill.distill_data import CLASSES, make_rows, run_snippet, tiny_config

TEXTS = ["loved it, wonderful", "boring and awful", "a movie"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(student, folder): trained on 18 rows with 6 validation rows (the real MiniLM encoder)."""
    out = tmp_path_factory.mktemp("embedding")
    rows = make_rows()
    student = make_student("embedding", CLASSES)
    student.train(rows[:18], tiny_config(student={"type": "embedding"}), out, eval_data=rows[18:])
    return student, out, rows


def test_trains_in_seconds_picks_c_on_validation_and_saves_a_head(trained):
    student, out, _ = trained
    assert {p.name for p in out.iterdir()} >= {"head.safetensors", "agentlab_student.json", "README.md"}
    train = student.meta["train"]
    assert train["examples"] == 16 and train["C"] in C_GRID  # 18 rows, 2 unlabeled
    assert {"val_loss", "val_accuracy", "train_loss", "seconds"} <= set(train)
    assert student.meta["type"] == "embedding" and student.meta["base"] == "minilm"


def test_separates_the_classes_and_reloads_identically(trained):
    student, out, rows = trained
    P = student.predict([r["text"] for r in rows])
    gold = np.array([CLASSES.index(r["gold"]) for r in rows])
    assert P.shape == (24, 2) and np.allclose(P.sum(1), 1)
    assert (P.argmax(1) == gold).mean() >= 0.9  # clearly worded reviews; MiniLM's embeddings separate them
    assert np.allclose(load_student(out).predict(TEXTS), student.predict(TEXTS), atol=1e-6)
    assert student.predict([]).shape == (0, 2)


def test_card_snippet_reproduces_predict_with_plain_libraries(trained):
    student, out, _ = trained
    card = (out / "README.md").read_text()
    assert "library_name: sentence-transformers" in card and "head.safetensors" in card
    ns = run_snippet(card)
    assert np.allclose(ns["probs"], student.predict(["an example text"]), atol=1e-5)


def test_fit_head_gradient_is_exact():
    rng = np.random.default_rng(0)
    X, T, w = rng.normal(size=(7, 4)), rng.dirichlet([1, 1, 1], size=7), rng.uniform(0.2, 1.0, size=7)

    def loss(theta):
        W, b = theta[:12].reshape(4, 3), theta[12:]
        return float(-(w[:, None] * T * np.log(softmax(X @ W + b))).sum() + (W * W).sum() / 2)

    def grad(theta):
        W, b = theta[:12].reshape(4, 3), theta[12:]
        G = (softmax(X @ W + b) - T) * w[:, None]
        return np.concatenate([(X.T @ G + W).ravel(), G.sum(0)])

    theta = rng.normal(size=15)
    assert check_grad(loss, grad, theta) < 1e-5
    W, b = fit_head(X, T, w, C=1.0)  # the optimum: the gradient vanishes there
    assert np.abs(grad(np.concatenate([W.ravel(), b]))).max() < 1e-3


def _two_blobs(n=40, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return rng.normal(size=(n, 3)) + np.where(y[:, None] == 0, -1.0, 1.0), y


def test_soft_targets_give_less_confident_heads_than_hard_ones():
    X, y = _two_blobs()
    hard = np.eye(2)[y]
    soft = 0.7 * hard + 0.15
    w = np.ones(len(y))
    conf = lambda T: softmax(X @ fit_head(X, T, w, 10.0)[0] + fit_head(X, T, w, 10.0)[1]).max(1).mean()
    assert conf(hard) > conf(soft) > 0.5


def test_confidence_weights_let_sure_rows_outvote_unsure_wrong_ones():
    X, y = _two_blobs(seed=1)
    flipped = y.copy()
    flipped[:14] = 1 - flipped[:14]  # 35% of the labels are wrong...
    w = np.where(np.arange(len(y)) < 14, 0.05, 1.0)  # ...and the label model is unsure exactly there
    acc = lambda weights: (softmax(X @ (h := fit_head(X, np.eye(2)[flipped], weights, 1.0))[0] + h[1]).argmax(1) == y).mean()
    assert acc(w) > acc(np.ones(len(y)))
    assert acc(w) >= 0.9


def test_an_unknown_encoder_is_a_clear_error(tmp_path):
    student = make_student("embedding", CLASSES)
    with pytest.raises(TrainingError, match="embedding student: embedding model 'nope' not found"):
        student.train(make_rows(), tiny_config(student={"type": "embedding", "base": "nope"}), tmp_path)
