"""Correlated labelers: agreement beyond what the labelers' accuracies explain.

Prompt variants of one LLM, or one rule copied with a small change, vote together far more often
than two independent labelers of the same accuracy would. A label model that assumes independence
then counts their shared opinion several times ("they vouch for each other"). We estimate, for each
pair of labelers, how often both vote the same class, observed vs expected under the fitted
Dawid–Skene model (P(both vote c) = Σ_y π_y θ_j[c, y] θ_l[c, y], θ including how often each
labeler votes): the ratio is the pair's *lift*. Pairs with lift ≥ `min_lift` that share at least
`min_overlap` rows are linked, and linked labelers form groups (connected components).
Dawid–Skene counts a group's votes in a row as one vote (``dedupe_labelers: groups``, `row_weights`),
and the LF table reports the groups.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agentlab.labeling.matrix import check_cardinality, check_matrix, indicator


def same_vote_counts(L: np.ndarray, k: int) -> np.ndarray:
    """(m, m) number of rows where labelers j and l both vote and vote the same class."""
    m = L.shape[1]
    X = indicator(L, k).tocsc()
    out = np.zeros((m, m))
    for c in range(k):
        cols = X[:, np.arange(m) * k + c]
        out += np.asarray((cols.T @ cols).todense())
    return out


def pair_lift(L: Any, k: int, theta: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(observed same-vote counts, lift = observed / expected) for every labeler pair.

    Args:
        L: label matrix (n, m). k: classes.
        theta: (m, k votes, k classes) P(vote = l | y), abstains excluded (rows sum to P(vote | y)).
        pi: (k,) class balance.
    """
    k = check_cardinality(k)
    L = check_matrix(L, k)
    obs = same_vote_counts(L, k)
    A = (theta * np.sqrt(pi)[None, None, :]).reshape(len(theta), -1)  # Σ_c Σ_y π_y θ_j θ_l as one product
    exp = len(L) * (A @ A.T)
    lift = obs / np.maximum(exp, 1e-9)
    np.fill_diagonal(lift, 1.0)
    return obs, lift


def labeler_groups(L: Any, k: int, theta: np.ndarray, pi: np.ndarray, min_lift: float = 2.0,
                   min_overlap: int = 20, min_jaccard: float = 0.3,
                   pairs: tuple[np.ndarray, np.ndarray] | None = None) -> list[list[int]]:
    """Groups (size >= 2) of labelers linked by lift >= `min_lift` on >= `min_overlap` shared
    votes that are also near-copies: the rows where both vote the same class are at least
    `min_jaccard` of the rows where either votes (lift alone also links a narrow rule to the broad
    rule it refines). `pairs` = a `pair_lift` result for the same L, theta and pi, to reuse."""
    obs, lift = pairs if pairs is not None else pair_lift(L, k, theta, pi)
    votes = np.count_nonzero(np.asarray(L) >= 0, axis=0).astype(float)
    jaccard = obs / np.maximum(np.add.outer(votes, votes) - obs, 1.0)
    linked = (lift >= min_lift) & (obs >= min_overlap) & (jaccard >= min_jaccard)
    np.fill_diagonal(linked, False)
    m = len(linked)
    parent = list(range(m))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(*np.nonzero(np.triu(linked))):
        parent[find(int(a))] = find(int(b))
    groups: dict[int, list[int]] = {}
    for j in range(m):
        groups.setdefault(find(j), []).append(j)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def group_share(groups: list[list[int]], m: int) -> np.ndarray:
    """(m,) 1 / size of each labeler's group (1 for labelers in no group)."""
    share = np.ones(m)
    for g in groups:
        share[g] = 1.0 / len(g)
    return share


def row_weights(L: np.ndarray, groups: list[list[int]], share: np.ndarray | None = None) -> np.ndarray:
    """(n, m) weight of each vote: `share` (default 1) outside groups; inside a group, 1 / the
    number of its members voting in that row, so a group's votes in a row add up to one vote."""
    voted = L >= 0
    w = np.broadcast_to(np.ones(L.shape[1]) if share is None else share, L.shape).astype(float)
    for g in groups:
        n_voting = voted[:, g].sum(axis=1, keepdims=True)
        w[:, g] = 1.0 / np.maximum(n_voting, 1)
    return np.where(voted, w, 0.0)
