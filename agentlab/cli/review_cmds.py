"""`agentlab review push|pull`: put uncertain rows in front of a person in Label Studio, and bring the answers back."""

from __future__ import annotations

import click

from agentlab.cli import handle_errors, main


@main.group()
def review() -> None:
    """Human review of a label run's most uncertain rows through Label Studio (API key: $LABEL_STUDIO_API_KEY)."""


@review.command("push")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--url", required=True, help="The Label Studio server, e.g. http://localhost:8080.")
@click.option("--n", "n", default=50, show_default=True, type=click.IntRange(min=1), help="How many rows to add for review.")
@handle_errors
def review_push(run_dir, url, n):
    """Create or update RUN_DIR's Label Studio project and import the N rows most worth a person's time.

    Rows rank by: label model differs from the labelers' majority, labelers disagree, no labeler voted,
    then lowest confidence. Rows already in the project or in reviewed.jsonl are not sent again.
    """
    from agentlab.review.loop import push_review

    out = push_review(run_dir, url, n)
    verb = "created" if out["created"] else "updated"
    why = ", ".join(f"{k}: {v}" for k, v in out["reasons"].items()) or "nothing new"
    click.echo(f"{verb} project {out['project_url']}: imported {out['imported']} tasks "
               f"({out['already_in_project']} were already there; {why})")


@review.command("pull")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--url", help="The Label Studio server (default: the one `review push` used, from RUN_DIR/review.json).")
@click.option("--project", "project_id", type=click.IntRange(min=1), help="Project id (default: from RUN_DIR/review.json).")
@handle_errors
def review_pull(run_dir, url, project_id):
    """Fetch RUN_DIR's finished annotations into RUN_DIR/reviewed.jsonl (`label` = the person's answer)."""
    from agentlab.review.loop import pull_review

    out = pull_review(run_dir, url, project_id)
    rate = f" ({out['agree_with_label_model'] / out['reviewed']:.0%})" if out["reviewed"] else ""
    skipped = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in out.items() if k in ("cancelled", "not_in_run", "unknown_class") and v)
    click.echo(f"Wrote {out['reviewed']} reviewed rows to {out['path']}; the label model agreed on "
               f"{out['agree_with_label_model']}{rate}" + (f"; left out {skipped}" if skipped else ""))
