"""`agentlab doctor`: check that the native pieces run on this machine."""

from __future__ import annotations

import sys

import click

from agentlab.cli import handle_errors, main


@main.command()
@click.option("--model-path", help="Check this GGUF instead of the shipped SmolLM2.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@handle_errors
def doctor(model_path, as_json):
    """Run the embedded model once in a child process; name what crashed and the fix (exit 1 on a failure)."""
    from agentlab.doctor import run_checks

    probes = run_checks(model_path)
    if as_json:
        import json

        click.echo(json.dumps([{"name": p.name, "ok": p.ok, "message": p.message, "details": p.details} for p in probes], indent=2))
    else:
        for p in probes:
            click.echo(p.line())
    if not all(p.ok for p in probes):
        sys.exit(1)
