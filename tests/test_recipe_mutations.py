"""Every shipped recipe, mutated at every path (a value replaced by a wrong type, or deleted), validates to
either a recipe or a RecipeErrors/AgentlabError: never another exception (e.g. `backend: {}` was a TypeError)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from agentlab.errors import AgentlabError
from agentlab.recipe import parse_recipe

RECIPES = sorted((Path(__file__).resolve().parent.parent / "recipes").glob("*.yaml"))
WRONG = [{}, [], None, 1, "x", True, "${AGENTLAB_UNSET_VAR}", "DELETE"]


def _paths(node, pre=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*pre, k)
            yield from _paths(v, (*pre, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*pre, i)
            yield from _paths(v, (*pre, i))


def _mutated(raw, path, value):
    out = copy.deepcopy(raw)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value == "DELETE":
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_mutated_shipped_recipe_never_crashes_validation(recipe):
    raw = yaml.safe_load(recipe.read_text())
    crashes = []
    for path in _paths(raw):
        for value in WRONG:
            try:
                parse_recipe(_mutated(raw, path, value), recipe)
            except AgentlabError:
                pass
            except Exception as exc:  # the point of the test: any other exception is a crash
                crashes.append(f"{'.'.join(map(str, path))} = {value!r}: {type(exc).__name__}: {exc}")
    assert not crashes, "\n".join(crashes[:20])
