"""The dataset card (dataset/README.md): Hugging Face YAML front matter plus how the data was made.

Rendered from the run's manifest and columns, so `agentlab push` can re-render it for a Hub repo
(`tests/hub/test_card.py` parses it with `huggingface_hub.DatasetCard` and runs its loading snippet).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agentlab.hub.metadata import metadata_problems, size_category

TASK_CATEGORY = {"label": "text-classification", "debate": "text-classification", "w2s": "text-classification",
                 "queries": "text-retrieval", "autobench": "question-answering", "triplets": "text-generation",
                 "generate": "text-generation"}
SPLIT = "train"
DATA_DIR = "data"

_COLUMNS = {
    "id": "row id (the source's `id_field`, else the row number)",
    "text": "the input text",
    "label": "the written label: the label model's most probable class (null where every labeler abstained)",
    "label_probs": "the label model's probability for each class",
    "confidence": "the label model's probability of `label` (0 where every labeler abstained)",
    "votes": "each labeler's vote (null = abstained)",
    "vote_confidence": "each LLM labeler's probability for its own vote",
    "labeler_raw": "a labeler's raw answer where it could not be parsed (that labeler abstained)",
    "gold": "the source's gold label (`eval.gold`): hidden from every labeler and prompt, used only to measure",
    "_raw": "the model's raw answer where it could not be parsed",
    "_error": "why this row's answer is missing",
}


@dataclass
class StudentLink:
    """Where the run's distilled student lives: a folder beside the dataset and/or a Hub model repo."""

    local: str | None = None
    repo_id: str | None = None
    summary: str | None = None


def local_student(manifest: dict[str, Any]) -> StudentLink | None:
    """The run's own student (`distill:`), as the manifest records it, or None."""
    rel = (manifest.get("artifacts") or {}).get("student")
    if not rel:
        return None
    acc = (((manifest.get("metrics") or {}).get("distill") or {}).get("student") or {}).get("accuracy")
    return StudentLink(local=rel, summary=f"Held-out accuracy against gold: {acc:.3f}." if isinstance(acc, float) else None)


def front_matter(manifest: dict[str, Any], n_rows: int) -> dict[str, Any]:
    """The card's YAML metadata: task_categories, size_categories, language/license when known, configs."""
    source = (manifest.get("recipe") or {}).get("source") or {}
    meta: dict[str, Any] = {"pretty_name": (manifest.get("recipe") or {}).get("name") or "agentlab dataset"}
    if source.get("license"):
        meta["license"] = source["license"]
    lang = source.get("language")
    if lang:
        meta["language"] = [lang] if isinstance(lang, str) else list(lang)
    meta.update({
        "task_categories": [TASK_CATEGORY.get(str(manifest.get("task")), "other")],
        "size_categories": [size_category(n_rows)],
        "annotations_creators": ["machine-generated"],
        "tags": ["agentlab", "synthetic", *(["weak-supervision"] if manifest.get("task") == "label" else [])],
        "configs": [{"config_name": "default", "data_files": [{"split": SPLIT, "path": f"{DATA_DIR}/{SPLIT}-*"}]}],
    })
    return meta


def render_dataset_card(manifest: dict[str, Any], columns: dict[str, str], n_rows: int, *,
                        local_dir: str | Path | None = None, repo_id: str | None = None,
                        student: StudentLink | None = None) -> str:
    """The dataset card markdown.

    Args:
        manifest: the run's manifest.json.
        columns: column name -> type (as `datasets` prints it), in dataset order.
        n_rows: rows in the dataset.
        local_dir: the `dataset/` folder (the card shows a `load_from_disk` snippet for it).
        repo_id: the Hub dataset repo (the card shows a `load_dataset` snippet for it).
        student: the run's student, linked from the card.
    """
    meta = front_matter(manifest, n_rows)
    problems = metadata_problems(meta)
    if problems:  # a recipe field reached here unvalidated: fail loudly rather than write a card the Hub rejects
        raise ValueError("dataset card metadata: " + "; ".join(problems))
    recipe = manifest.get("recipe") or {}
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {meta['pretty_name']}", ""]
    if recipe.get("description"):
        lines += [str(recipe["description"]).strip(), ""]
    lines += [f"{n_rows:,} rows made by [agentlab](https://pypi.org/project/agentlab/) "
              f"{manifest.get('agentlab_version', '')} (`{manifest.get('task')}` task) from recipe "
              f"`{str(manifest.get('recipe_hash', ''))[:16]}`, {manifest.get('created', '')}. "
              "The labels are machine-made: read the caveats before using them.", ""]
    lines += _made(manifest)
    lines += _quality(manifest)
    lines += _caveats(manifest)
    lines += _columns(columns)
    lines += _student(student)
    lines += _loading(local_dir, repo_id)
    return "\n".join(lines).rstrip() + "\n"


def _made(manifest: dict[str, Any]) -> list[str]:
    recipe = manifest.get("recipe") or {}
    task, source = recipe.get("task") or {}, recipe.get("source") or {}
    out = ["## How the data was made", "",
           f"- Source: `{source.get('path', 'n/a')}`" + (f", license `{source['license']}`" if source.get("license") else "")
           + (f", language {source['language']}" if source.get("language") else "") + "."]
    classes = task.get("classes")
    if classes:
        out.append("- Classes: " + ", ".join(f"`{c}`" + (f" ({d})" if isinstance(classes, dict) and d else "")
                                             for c, d in (classes.items() if isinstance(classes, dict) else ((c, None) for c in classes))) + ".")
    for i, lab in enumerate(task.get("labelers") or []):
        desc = ", ".join(f"{k}: `{v}`" for k, v in lab.items() if k != "type" and isinstance(v, (str, int, float, bool)))
        out.append(f"- Labeler {i}: `{lab.get('type')}`" + (f" ({desc})" if desc else ""))
    agg = recipe.get("aggregate") or {}
    used = (manifest.get("metrics") or {}).get("used") or agg.get("use") or agg.get("method")
    if task.get("type") == "label":
        method = agg.get("method")
        out.append(f"- Label model: `{used or 'auto'}`" + (f" (chosen by `method: {method}`)" if method and method != used else "") + ".")
    out += ["", "Models (counts from the run's manifest; cached calls cost nothing):", "",
            "| model | backend | model id | calls | cache hits | failed | prompt tokens | completion tokens | cost $ |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, m in (manifest.get("models") or {}).items():
        cfg = m.get("config") or {}
        ident = cfg.get("model") or cfg.get("model_path") or ("SmolLM2-135M-Instruct" if cfg.get("backend") == "embedded" else "")
        out.append(f"| {name} | {cfg.get('backend', '')} | {ident} | {m.get('llm_calls', 0)} | {m.get('cache_hits', 0)} | "
                   f"{m.get('failed', 0)} | {m.get('prompt_tokens', 0)} | {m.get('completion_tokens', 0)} | {m.get('cost_usd', 0.0):.4f} |")
    prompts = manifest.get("prompts") or {}
    if prompts:
        out += ["", "Prompts (hash of each template as used, as in the manifest):", "", "| prompt | hash |", "|---|---|"]
        out += [f"| `{p}` | `{h}` |" for p, h in prompts.items()]
    return out + [""]


def _quality(manifest: dict[str, Any]) -> list[str]:
    metrics = manifest.get("metrics") or {}
    out = ["## Quality", ""]
    labelers = metrics.get("labelers") or []
    if labelers:
        out += ["Labelers (coverage over all rows; accuracy estimated by the label model without gold, "
                "and measured against gold where the source had it):", "",
                "| labeler | coverage | conflict | est. accuracy | accuracy vs gold |", "|---|---|---|---|---|"]
        out += [f"| {r.get('name')} | {_f(r.get('coverage'))} | {_f(r.get('conflict'))} | {_f(r.get('est_accuracy'))} | "
                f"{_f(r.get('emp_accuracy'))} |" for r in labelers]
        out.append("")
    gold = {k: v for k, v in metrics.items() if isinstance(v, dict) and "accuracy" in v}
    if gold:
        out += ["Label models against gold (accuracy on covered rows; `accuracy_all` counts an abstain as wrong):", "",
                "| label model | accuracy | accuracy_all | macro-F1 | coverage | ECE | n |", "|---|---|---|---|---|---|---|"]
        out += [f"| {k}{' (written)' if k == metrics.get('used') else ''} | {_f(v.get('accuracy'))} | {_f(v.get('accuracy_all'))} | "
                f"{_f(v.get('macro_f1'))} | {_f(v.get('coverage'))} | {_f(v.get('ece'))} | {v.get('n', '')} |" for k, v in gold.items()]
    else:
        out.append("No gold labels were given (`eval.gold`): the labels' accuracy was not measured.")
    counts = manifest.get("counts") or {}
    out += ["", f"Counts: {json.dumps(counts)}.", ""]
    return out


def _caveats(manifest: dict[str, Any]) -> list[str]:
    items = list(dict.fromkeys(manifest.get("caveats") or []))
    items += ["Every label was made by models and rules, not people: expect systematic errors where the labelers "
              "share a blind spot, and check a sample by hand before training on it.",
              "The class balance follows the labelers' mistakes as well as the data."]
    return ["## Caveats", "", *[f"- {c}" for c in items], ""]


def _columns(columns: dict[str, str]) -> list[str]:
    out = ["## Columns", "", "| column | type | meaning |", "|---|---|---|"]
    out += [f"| `{c}` | {t} | {_COLUMNS.get(c, 'from the source')} |" for c, t in columns.items()]
    return out + [""]


def _student(student: StudentLink | None) -> list[str]:
    if student is None or not (student.local or student.repo_id):
        return []
    where = (f"[{student.repo_id}](https://huggingface.co/{student.repo_id})" if student.repo_id
             else f"`{student.local}/` in the run directory ([its model card](../{student.local}/README.md))")
    return ["## Student model", "", f"A small model distilled from these labels: {where}."
            + (f" {student.summary}" if student.summary else ""), ""]


def _loading(local_dir: str | Path | None, repo_id: str | None) -> list[str]:
    out = ["## Load it", ""]
    if repo_id:
        out += ["```python", "from datasets import load_dataset", "",
                f"ds = load_dataset({repo_id!r}, split={SPLIT!r})", "print(ds)", "```", ""]
    if local_dir:
        out += ["From the run directory (`datasets.load_from_disk`):", "", "```python", "from datasets import load_from_disk", "",
                f"ds = load_from_disk({str(Path(local_dir).resolve())!r})", "print(ds)", "```", ""]
    return out


def _f(v: Any) -> str:
    return "" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def code_blocks(card: str) -> list[str]:
    """The python code blocks of a card (the tests execute them)."""
    return [b.split("```", 1)[0] for b in card.split("```python\n")[1:]]


def feature_types(features: Any) -> dict[str, str]:
    """Column name -> a short type name, from a `datasets.Features` mapping."""
    return {name: _type(f) for name, f in features.items()}


def _type(f: Any) -> str:
    if isinstance(f, dict):
        return "struct"
    if isinstance(f, list) or type(f).__name__ in ("Sequence", "List", "LargeList"):
        return "list"
    return str(getattr(f, "dtype", type(f).__name__))
