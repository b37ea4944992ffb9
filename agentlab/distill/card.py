"""The student's model card (README.md) with a plain-library loading snippet that runs as written.

The snippet uses only peft / transformers / sentence-transformers, with the folder and base
model paths of this machine filled in (`tests/distill/test_card.py` executes it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentlab.distill.base import write_meta

_CLASSIFIER_LORA = '''import torch
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer

STUDENT = {student!r}  # this folder
BASE = {base!r}  # or the hub copy: {hub!r}
CLASSES = {classes!r}
tok = AutoTokenizer.from_pretrained(STUDENT)
base = AutoModelForSequenceClassification.from_pretrained(BASE, num_labels=len(CLASSES))
base.config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
model = PeftModel.from_pretrained(base, STUDENT).eval()
texts = ["an example text"]
with torch.no_grad():
    enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length={max_length})
    probs = model(**enc).logits.softmax(-1)
print([dict(zip(CLASSES, p.tolist())) for p in probs])
'''

_CLASSIFIER_FULL = '''import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

STUDENT = {student!r}  # this folder
tok = AutoTokenizer.from_pretrained(STUDENT)
model = AutoModelForSequenceClassification.from_pretrained(STUDENT).eval()
texts = ["an example text"]
with torch.no_grad():
    enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length={max_length})
    probs = model(**enc).logits.softmax(-1)
print([{{model.config.id2label[i]: p for i, p in enumerate(row.tolist())}} for row in probs])
'''

_CAUSAL = '''import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

STUDENT = {student!r}  # this folder
BASE = {base!r}  # or the hub copy: {hub!r}
tok = AutoTokenizer.from_pretrained(STUDENT)
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), STUDENT).eval()
prompt = {prompt!r}.format(text="an example text")
enc = tok(prompt, return_tensors="pt")
with torch.no_grad():
    out = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], max_new_tokens=8,
                         do_sample=False, use_cache=False, pad_token_id=tok.pad_token_id or tok.eos_token_id)
print(tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
'''

_RETRIEVER = '''from sentence_transformers import SentenceTransformer

STUDENT = {student!r}  # this folder
model = SentenceTransformer(STUDENT, device="cpu")
emb = model.encode(["a query", "a document"], normalize_embeddings=True)
print(float(emb[0] @ emb[1]))
'''


#: the end of every embedding-student snippet: the logistic-regression head over the features X
_HEAD = '''z = X @ head["weight"] + head["bias"]
probs = np.exp(z - z.max(1, keepdims=True))
probs /= probs.sum(1, keepdims=True)
print([dict(zip(CLASSES, p.tolist())) for p in probs])
'''

_EMBEDDING = '''import numpy as np
from safetensors.numpy import load_file
from sentence_transformers import SentenceTransformer

STUDENT = {student!r}  # this folder
BASE = {base!r}  # or the hub copy: {hub!r}
CLASSES = {classes!r}
head = load_file(STUDENT + "/head.safetensors")
encoder = SentenceTransformer(BASE, device="cpu")
X = encoder.encode(["an example text"], normalize_embeddings=True).astype(np.float64)
''' + _HEAD

_EMBEDDING_GGUF = '''import llama_cpp
import numpy as np
from safetensors.numpy import load_file

STUDENT = {student!r}  # this folder
BASE = {base!r}  # the GGUF of {hub!r}
PROMPT = {prompt!r}
CLASSES = {classes!r}
head = load_file(STUDENT + "/head.safetensors")
llm = llama_cpp.Llama(BASE, embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST, n_ctx=1024, verbose=False)
X = np.asarray(llm.embed([PROMPT.replace("{{text}}", "an example text")]), dtype=np.float64)
''' + _HEAD


_EMBEDDING_PARTS = '''import llama_cpp
import numpy as np
from safetensors.numpy import load_file
from sentence_transformers import SentenceTransformer

STUDENT = {student!r}  # this folder
PARTS = {parts!r}  # (kind, path) of each encoder; the features go side by side
PROMPT = {prompt!r}  # GGUF parts read this, the sentence encoders the bare text
CLASSES = {classes!r}
head = load_file(STUDENT + "/head.safetensors")
texts = ["an example text"]
feats = []
for kind, path in PARTS:
    if kind == "gguf":
        llm = llama_cpp.Llama(path, embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST, n_ctx=1024, verbose=False)
        feats.append(np.asarray(llm.embed([PROMPT.replace("{{text}}", t) for t in texts]), dtype=np.float64))
    else:
        feats.append(SentenceTransformer(path, device="cpu").encode(texts, normalize_embeddings=True).astype(np.float64))
X = np.hstack(feats)
''' + _HEAD


def loading_snippet(out_dir: Path, meta: dict[str, Any]) -> str:
    """Python code that loads this student with plain peft/transformers/sentence-transformers."""
    fill = {"student": str(Path(out_dir).resolve()), "base": meta.get("base_path"), "hub": meta.get("hub_id") or meta.get("base"),
            "classes": meta.get("classes"), "max_length": meta.get("max_length", 128), "prompt": meta.get("prompt", "{text}")}
    kind = meta.get("type")
    if kind == "embedding" and " + " in str(meta.get("base_path")):
        from agentlab.distill.gguf_features import is_gguf_base

        paths = str(meta["base_path"]).split(" + ")
        kinds = ["gguf" if is_gguf_base(p) else "st" for p in paths]
        return _EMBEDDING_PARTS.format(**fill, parts=list(zip(kinds, paths)))
    if kind == "embedding":
        return (_EMBEDDING_GGUF if meta.get("pooling") == "last" else _EMBEDDING).format(**fill)
    if kind == "retriever":
        return _RETRIEVER.format(**fill)
    if kind == "causal":
        return _CAUSAL.format(**fill)
    return (_CLASSIFIER_FULL if meta.get("peft") == "none" else _CLASSIFIER_LORA).format(**fill)


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _metrics_table(evaluation: dict[str, Any]) -> list[str]:
    """A markdown table of {model: {accuracy, macro_f1, ece, coverage}} rows."""
    rows = [(name, m) for name, m in evaluation.items() if isinstance(m, dict) and "accuracy" in m]
    if not rows:
        return []
    keys = ["accuracy", "macro_f1", "ece", "coverage", "n"]
    out = ["| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    out += [f"| {name} | " + " | ".join(_fmt(m.get(k, "")) for k in keys) + " |" for name, m in rows]
    return out


def _dataset_link(prov: dict[str, Any]) -> str:
    """Where the labels it was trained on are published: the Hub dataset, else the run's dataset card."""
    if prov.get("dataset_repo"):
        return f"- Dataset: [{prov['dataset_repo']}](https://huggingface.co/datasets/{prov['dataset_repo']}) (its card says how the labels were made)."
    if prov.get("run_dir"):
        return f"- Dataset card: `{Path(prov['run_dir']) / 'dataset' / 'README.md'}` (how the labels were made)."
    return "- Dataset: the rows given to `agentlab train`."


def render_card(out_dir: Path, meta: dict[str, Any]) -> str:
    """The model card markdown for a student folder's metadata."""
    prov = meta.get("provenance") or {}
    classes = meta.get("classes") or []
    peft = meta.get("peft", "lora")
    weights = {"lora": "a LoRA adapter (`adapter_model.safetensors`) over the base model",
               "prompt_tuning": "a soft prompt (`adapter_model.safetensors`) for the base model",
               "none": "the full fine-tuned model (`model.safetensors`)"}.get(peft, peft)
    if meta.get("type") == "retriever":
        weights = "a full sentence-transformers model (LoRA merged into the weights, when used)"
    if meta.get("type") == "embedding":
        weights = "a logistic-regression head (`head.safetensors`) over the frozen sentence-embedding base model"
    lines = [
        "---", f"base_model: {meta.get('hub_id') or meta.get('base')}", "library_name: " +
        ("sentence-transformers" if meta.get("type") in ("retriever", "embedding") else "peft" if peft != "none" else "transformers"),
        "tags: [agentlab, distillation]", *([f"datasets: [{prov['dataset_repo']}]"] if prov.get("dataset_repo") else []), "---", "",
        f"# agentlab {meta.get('type')} student", "",
        f"A small model distilled by agentlab from LLM-made labels. Weights: {weights}.", "",
        "## Base model",
        f"- `{meta.get('base')}` ({meta.get('hub_id') or 'local model'}), loaded from `{meta.get('base_path')}`.", "",
        "## Data provenance",
        f"- Run: `{prov.get('run_dir', 'n/a')}`; recipe hash `{prov.get('recipe_hash', 'n/a')}`.",
        f"- Labels: {prov.get('label_source', 'the rows given to `train` (label / label_probs)')}.",
        _dataset_link(prov),
        (f"- Training rows: {meta.get('train', {}).get('examples', 'n/a')}; "
         f"targets: {'soft (label_probs)' if meta.get('soft_labels', True) else 'hard (argmax label)'}. "
         "Gold labels were not used for training."),
    ]
    if classes:
        lines.append(f"- Classes: {', '.join(f'`{c}`' for c in classes)}.")
    lines += ["", "## Metrics", "Training:", "```json", json.dumps(meta.get("train", {}), indent=1, default=str), "```"]
    table = _metrics_table(meta.get("evaluation") or {})
    if table:
        lines += ["", "Held-out rows with gold labels (student vs the label model and each teacher):", "", *table]
    lines += [
        "", "## Intended use",
        "Cheap, local predictions for the same task and text distribution as the run it was trained on.", "",
        "## Limits",
        "- It learns the teachers' mistakes: its ceiling is roughly the quality of the labels it was trained on.",
        "- Untested outside the run's data; check accuracy on your own labeled sample before relying on it.",
        "- Probabilities are calibrated only as well as the label model's; see ECE above when gold was available.", "",
        "## Load it", "With agentlab: `agentlab predict STUDENT_DIR input.jsonl -o out.jsonl`, or with plain libraries:", "",
        "```python", loading_snippet(out_dir, meta).rstrip(), "```", "",
    ]
    return "\n".join(lines)


def finish_student(out_dir: Path, meta: dict[str, Any]) -> None:
    """Write ``agentlab_student.json`` and the model card README.md into the student folder."""
    write_meta(out_dir, meta)
    Path(out_dir, "README.md").write_text(render_card(out_dir, meta), encoding="utf-8")


def extract_snippet(card: str) -> str:
    """The python code block of a card (used by the tests to run it)."""
    return card.split("```python\n", 1)[1].split("```", 1)[0]
