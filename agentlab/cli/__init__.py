"""The `agentlab` command line. Only this package turns errors into messages and exit codes."""

from __future__ import annotations

import functools
import sys

import click

from agentlab import __version__
from agentlab.errors import AgentlabError, RecipeErrors


def handle_errors(fn):
    """Turn agentlab errors into `Error: ...` on stderr and the error's exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RecipeErrors as exc:
            n = len(exc.errors)
            click.echo(f"Error: invalid recipe ({n} problem{'s' * (n != 1)}):", err=True)
            for e in exc.errors:
                click.echo(f"  {e}", err=True)
            sys.exit(exc.exit_code)
        except AgentlabError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted; completed calls are cached: run the same command again to resume.", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="agentlab")
def main() -> None:
    """agentlab: labeled datasets, benchmarks and small models from unlabeled data, by prompting LLMs."""


def _register() -> None:
    from agentlab.cli import (  # noqa: F401
        doctor_cmds,
        plan_cmds,
        review_cmds,
        run_cmds,
        share_cmds,
        train_cmds,
    )


_register()
