"""`agentlab push`: publish a run's dataset (and student) to the Hugging Face Hub."""

from __future__ import annotations

import tempfile

import click

from agentlab.cli import handle_errors, main


@main.command("push")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Create the repo(s) private.")
@click.option("--student", is_flag=True, help="Also push the run's student (RUN_DIR/student) with its model card.")
@click.option("--student-repo", help="Model repo for the student (default: REPO_ID-student).")
@click.option("--dry-run", is_flag=True, help="Print the files and commit messages; upload nothing.")
@handle_errors
def push_cmd(run_dir, repo_id, private, student, student_repo, dry_run):
    """Upload RUN_DIR's dataset (Parquet shards + dataset card) to the Hub dataset repo REPO_ID.

    The token comes from HF_TOKEN or `huggingface-cli login`; it is never written anywhere.
    """
    from agentlab.hub.push import hub_token, plan_push, push

    token = None if dry_run else hub_token()  # before any work: no token, no upload
    with tempfile.TemporaryDirectory(prefix="agentlab-push-") as staging:
        uploads = plan_push(run_dir, repo_id, staging, private=private, student=student, student_repo=student_repo)
        for u in uploads:
            click.echo(("would commit to " if dry_run else "commit to ") + u.describe())
        if dry_run:
            return
        for url in push(uploads, token):
            click.echo(f"pushed: {url}")
