"""`agentlab plan`: calls, tokens, cost and time of a recipe before it runs."""

from __future__ import annotations

import os
from pathlib import Path

import click

from agentlab.cli import handle_errors, main


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", help="Run directory the plan is for, as with generate (default: output.dir or outputs/<name>).")
@click.option("--limit", type=click.IntRange(min=1), help="Plan only the first N rows, as with generate.")
@click.option("--fresh", is_flag=True, help="Plan a run that ignores the call cache.")
@click.option("--plan-file", type=click.Path(dir_okay=False), help="Where to write plan.json (default: <run dir>.plan.json, beside the run directory).")
@handle_errors
def plan(recipe, out, limit, fresh, plan_file):
    """Print and write what running RECIPE would cost: calls per model, cache hits, tokens, $ and time.

    No model is called and nothing is written into the run directory.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from agentlab.plan import default_plan_path, make_plan, render_plan, write_plan
    from agentlab.recipe import load_recipe
    from agentlab.runner import run_dir_for

    rec = load_recipe(recipe)
    result = make_plan(rec, out=out, limit=limit, fresh=fresh)
    path = write_plan(result, Path(plan_file) if plan_file else default_plan_path(run_dir_for(rec, out)))
    click.echo(render_plan(result))
    click.echo(f"Wrote {path}")
