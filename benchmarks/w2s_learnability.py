"""Can a student learn the paired w2s task at all? The gold-trained MiniLM ceiling on real SST-2, no debate.

Builds the paired examples with the w2s task's own code (`build_data`: every review asked "Is this review
positive?" with its true and its flipped answer, both in one split), trains one `classifier` student per
setting on half 1 + half 2 with gold and reports its accuracy on the test reviews, next to the same
student trained on the plain sentiment task (review -> positive?) as a reference. Settings try the
cheapest input-format and training changes: answer first or last, more epochs, higher learning rate,
full fine-tune vs LoRA. Pick settings on `--select val` (a validation split carved from the training
reviews), and look at `--select test` only for the setting you picked.

Usage: python benchmarks/w2s_learnability.py [--reviews 140] [--select val|test] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parent.parent
REVIEW_FIRST = "Review: {{ text }}\nQuestion: {{ question }}\nProposed answer: {{ answer }}"
ANSWER_FIRST = "Proposed answer: {{ answer }}. {{ question }} Review: {{ text }}"
FULL = {"peft": {"method": "none"}}
#: the strong model as a causal LM that scores each answer as the completion of the input
CAUSAL = {"type": "causal", "base": "smollm2", "prompt": "{text}\nAnswer:"}
#: `score_answers: true`: the student reads the review and question only and scores the two answers
SCORE = "score_answers"
#: name -> (input template, distill overrides); None as template = the plain sentiment reference, SCORE = score_answers
SETTINGS = {
    "score_answers_minilm_lora_3ep": (SCORE, {"epochs": 3}),
    "score_answers_minilm_lora_8ep_lr3e-3": (SCORE, {"epochs": 8, "learning_rate": 3e-3}),
    "score_answers_minilm_lora_10ep": (SCORE, {"epochs": 10}),
    "score_answers_minilm_full_8ep_lr5e-5": (SCORE, {"epochs": 8, "learning_rate": 5e-5, "student": FULL}),
    "score_answers_minilm_full_5ep_lr1e-4": (SCORE, {"epochs": 5, "learning_rate": 1e-4, "student": FULL}),
    "score_answers_smollm2_lora_2ep": (SCORE, {"epochs": 2, "max_length": 64, "student": {"base": "smollm2"}}),
    "score_answers_smollm2_causal_lora_2ep": (SCORE, {"epochs": 2, "max_length": 96, "student": CAUSAL}),
    "score_answers_smollm2_causal_lora_5ep": (SCORE, {"epochs": 5, "max_length": 96, "student": CAUSAL}),
    "score_answers_smollm2_causal_full_3ep": (SCORE, {"epochs": 3, "max_length": 96, "learning_rate": 3e-5,
                                                      "student": {**CAUSAL, **FULL}}),
    "score_answers_smollm2_causal_zero_shot": (SCORE, {"max_steps": 1, "learning_rate": 1e-9, "max_length": 96, "student": CAUSAL}),
    "sentiment_only_full_5ep": (None, {"epochs": 5, "learning_rate": 1e-4, "student": FULL}),
    "lora_review_first_3ep": (REVIEW_FIRST, {"epochs": 3}),
    "lora_answer_first_3ep": (ANSWER_FIRST, {"epochs": 3}),
    "lora_answer_first_8ep_lr3e-3": (ANSWER_FIRST, {"epochs": 8, "learning_rate": 3e-3}),
    "full_answer_first_5ep": (ANSWER_FIRST, {"epochs": 5, "student": FULL}),
    "full_answer_first_8ep_lr1e-4": (ANSWER_FIRST, {"epochs": 8, "learning_rate": 1e-4, "student": FULL}),
    "full_answer_first_12ep_lr2e-4": (ANSWER_FIRST, {"epochs": 12, "learning_rate": 2e-4, "student": FULL}),
}


def load_reviews(path: Path, n: int) -> tuple[list[dict], list[int]]:
    """The first n SST-2 dev reviews after a seeded shuffle, and their gold labels."""
    import random

    rows = list(csv.DictReader(path.open(encoding="utf-8"), delimiter="\t"))
    random.Random(0).shuffle(rows)
    rows = rows[:n]
    return [{"text": r["sentence"].strip()} for r in rows], [int(r["label"]) for r in rows]


def trial(name: str, reviews: list[dict], gold: list[int], select: str) -> dict:
    """Train the ceiling for one setting; its accuracy on the selection split and on its own training examples."""
    import numpy as np

    from agentlab.config.sections import DistillConfig
    from agentlab.w2s.config import W2sConfig
    from agentlab.w2s.data import build_data, split_rows
    from agentlab.w2s.train import one_hot, train_and_predict, train_examples

    template, over = SETTINGS[name]
    score = template == SCORE
    w2s = W2sConfig.model_validate({"type": "w2s", "question": "Is this review positive?", "test_fraction": 0.3,
                                    "answers_from_gold": {1: "yes", 0: "no"}, "score_answers": score,
                                    **({} if score else {"input_template": template or REVIEW_FIRST})})
    d = build_data(w2s, reviews, gold)
    train, held = d.splits["half1"] + d.splits["half2"], d.splits["test"]
    if select == "val":  # carve validation reviews out of the training reviews; the test reviews stay unseen
        rows = sorted({d.source[i] for i in train})
        by_row = split_rows(rows, [gold[j] if j in rows else None for j in range(len(gold))], 0.3, seed=1)
        held_rows = set(by_row["test"])
        train, held = [i for i in train if d.source[i] not in held_rows], [i for i in train if d.source[i] in held_rows]
    if template is None:  # the sentiment reference: one example per review, target = positive?
        first = lambda idx: [i for i in idx if d.targets[i] == 0]
        texts = lambda idx: [reviews[d.source[i]]["text"] for i in first(idx)]
        targets = lambda idx: [0 if gold[d.source[i]] == 1 else 1 for i in first(idx)]
    else:
        texts = lambda idx: [d.texts[i] for i in idx]
        targets = lambda idx: [d.targets[i] for i in idx]
    cfg = DistillConfig.model_validate({"batch_size": 8, "max_length": 128, **over,
                                        "student": {"base": "minilm", **over.get("student", {})}})
    t0 = time.perf_counter()
    if template is None:
        probs, metrics = train_and_predict(cfg, d.classes, texts(train), one_hot(targets(train), 2),
                                           {"held": texts(held), "train": texts(train)}, Path(tempfile.mkdtemp()), seed=0)
    else:  # as W2sRun trains its students (score_answers: over the two answers, a review's examples merged)
        probs, metrics = train_examples(cfg, d, d.texts.__getitem__, train, one_hot(targets(train), 2),
                                        {"held": held, "train": train}, Path(tempfile.mkdtemp()), 0, score_answers=score)
    acc = lambda p, y: round(float(np.mean(np.argmax(p, 1) == np.array(y))), 4)
    return {"setting": name, "train_examples": len(texts(train)), f"{select}_examples": len(texts(held)),
            f"{select}_accuracy": acc(probs["held"], targets(held)), "train_accuracy": acc(probs["train"], targets(train)),
            "train_loss": metrics.get("train_loss"), "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/sst2/dev.tsv")
    ap.add_argument("--reviews", type=int, default=140, help="reviews (each yields two examples); 30%% are test")
    ap.add_argument("--select", choices=["val", "test"], default="val")
    ap.add_argument("--only", default=None, help="comma-separated setting names (default: all)")
    args = ap.parse_args()
    reviews, gold = load_reviews(args.data, args.reviews)
    names = args.only.split(",") if args.only else list(SETTINGS)
    print("| " + " | ".join(["setting", "train ex", f"{args.select} ex", f"{args.select} acc", "train acc", "loss", "s"]) + " |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        r = trial(name, reviews, gold, args.select)
        print("| " + " | ".join(str(v) for v in r.values()) + " |", flush=True)


if __name__ == "__main__":
    main()
