"""Checks that need the loaded rows, run before the run directory exists, so that a bad input writes nothing.

The recipe is validated on its own first (`agentlab.recipe`: fields, files, template syntax). These checks
add the rows: column names against the variables the task's templates read, then the task's own
`preflight` (render the first row's prompts, read a seed file), which makes no calls.
"""

from __future__ import annotations

from typing import Any

from agentlab.prompts import load_prompt
from agentlab.sources import check_template_names


def template_variables(recipe: Any) -> set[str]:
    """Every top-level variable that the recipe's template files read."""
    refs = [tpl for _, tpl in recipe.task_config.template_refs()]
    if recipe.escalate is not None and recipe.escalate.prompt:
        refs.append(recipe.escalate.prompt)
    out: set[str] = set()
    for tpl in refs:
        out |= load_prompt(recipe.resolve(tpl)).variables
    return out


def preflight(recipe: Any, task: Any, ctx: Any, rows: list[dict[str, Any]]) -> None:
    """Reject columns that clash with what the task's templates read, then run the task's preflight on row 0.

    Args:
        recipe: the validated recipe.
        task: the task instance that will run.
        ctx: the run context (no run directory or cache yet).
        rows: the loaded rows (gold already split off).
    """
    if task.template_names:
        used = template_variables(recipe)
        names = {k: v for k, v in task.template_names.items() if k in used}
        check_template_names(rows, names, recipe.resolve(recipe.source.path), recipe.task_config.type)
    task.preflight(ctx, rows[:1])
