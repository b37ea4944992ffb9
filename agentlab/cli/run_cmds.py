"""`agentlab generate`, `validate`, `models`."""

from __future__ import annotations

import os

import click

from agentlab.cli import handle_errors, main


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", help="Run directory (default: output.dir or outputs/<name>).")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N rows.")
@click.option("--fresh", is_flag=True, help="Ignore the call cache (answers are still cached for next time).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars; logs still go to run.log.")
@click.option("--executor", help="Override the recipe's executor: local, ray, or one a plugin registers.")
@click.option("--address", help="Ray cluster address (with --executor ray): auto, ray://head:10001 or host:port.")
@click.option("--replicas", type=click.IntRange(min=1), help="Ray actors, one backend each (overrides executor.replicas).")
@click.option("--max-cost-usd", type=click.FloatRange(min=0), help="Refuse to start when `agentlab plan` estimates more than this (USD).")
@handle_errors
def generate(recipe, out, limit, fresh, quiet, executor, address, replicas, max_cost_usd):
    """Run RECIPE end to end and write outputs/<name>/ (resumes from the cache if re-run)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if quiet:  # library progress bars and deprecation chatter stay out of a quiet run (run.log keeps ours)
        import warnings

        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        warnings.filterwarnings("ignore", category=FutureWarning)
    from agentlab.recipe import load_recipe
    from agentlab.runner import run_recipe

    rec = load_recipe(recipe)
    if replicas:
        rec.executor.replicas = replicas
    if max_cost_usd is not None:
        from agentlab.plan import check_cost

        check_cost(rec, max_cost_usd, out=out, limit=limit, fresh=fresh)
    run_dir = run_recipe(rec, out=out, limit=limit, fresh=fresh, quiet=quiet, executor=executor, address=address)
    if not quiet:
        click.echo(f"Wrote {run_dir}/ (data.jsonl, dataset/, manifest.json, report.md)")


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@handle_errors
def validate(recipe):
    """Check RECIPE without doing any work."""
    from agentlab.recipe import load_recipe

    rec = load_recipe(recipe)
    models = ", ".join(f"{n} ({c.backend})" for n, c in rec.model_configs.items())
    click.echo(f"OK: {rec.name}: task {rec.task_config.type}; models {models}")


@main.command()
@click.option("--recipe", type=click.Path(dir_okay=False), help="Check the models this recipe names.")
@handle_errors
def models(recipe):
    """List backends and whether each is usable here (and why not)."""
    from agentlab.backends.base import BACKENDS

    if recipe:
        from agentlab.recipe import load_recipe

        configs = load_recipe(recipe).model_configs
        items = [(name, BACKENDS.get(cfg.backend), cfg) for name, cfg in configs.items()]
    else:
        items = [(name, BACKENDS.get(name), None) for name in BACKENDS.names() if name != "fake"]
    for name, cls, cfg in items:
        try:
            why = cls.check(cfg if cfg is not None else cls.config_cls.model_construct(backend=name))
        except Exception as exc:  # check() must never crash the listing
            why = f"{type(exc).__name__}: {exc}"
        mark = "ok " if why is None else "no "
        click.echo(f"{mark} {name:<10} {'usable' if why is None else why}")
