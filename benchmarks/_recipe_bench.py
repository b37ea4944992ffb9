"""Shared by the benchmarks that run one shipped recipe and print a table from its manifest (debate, w2s)."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # as `agentlab generate -q`: no model-loading bars in the table
REPO = Path(__file__).resolve().parent.parent


def run(recipe_path: Path, source: Path | None, limit: int | None, out: Path, fresh: bool) -> tuple[dict, float]:
    """Run the recipe (its source re-pointed to `source`, its `source.limit` set to `limit` when given);
    return the manifest and the seconds it took."""
    import yaml

    from agentlab.recipe import parse_recipe
    from agentlab.runner import run_recipe

    raw = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    if source is not None:
        raw["source"]["path"] = str(source)
    if limit is not None:
        raw["source"]["limit"] = limit
    recipe = parse_recipe(raw, recipe_path)
    t0 = time.perf_counter()
    run_dir = run_recipe(recipe, out=str(out), quiet=True, fresh=fresh)
    return json.loads((run_dir / "manifest.json").read_text()), time.perf_counter() - t0


def main(doc: str, recipe: str, data_file: str, what: str, out: str, table: Callable[[dict], str]) -> None:
    """The command line: run `recipe` once (data under `--data-dir`/`data_file` when given), print `table(manifest)`."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--recipe", type=Path, default=REPO / recipe)
    ap.add_argument("--data-dir", type=Path, default=None, help=f"folder holding {data_file} (default: as the recipe says)")
    ap.add_argument("--limit", type=int, default=None, help=f"{what} (default: the recipe's source.limit)")
    ap.add_argument("--out", type=Path, default=Path(out))
    ap.add_argument("--fresh", action="store_true", help="ignore the call cache")
    args = ap.parse_args()
    os.chdir(REPO)
    source = args.data_dir / data_file if args.data_dir is not None else None
    man, secs = run(args.recipe.resolve(), source, args.limit, args.out, args.fresh)
    c, u = man["counts"], man["usage"]
    print(f"recipe {args.recipe.name}: {c['rows']} rows, {c['llm_calls']} calls ({c['cache_hits']} cached), "
          f"{u['prompt_tokens']} prompt + {u['completion_tokens']} completion tokens, {secs:.1f}s")
    print(table(man))
    print(f"outputs: {args.out}")
