"""What Label Studio shows: the labeling config for a run's classes, and one task per picked row."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

from agentlab.review.select import Candidate

FROM_NAME, TO_NAME = "label", "text"


def labeling_config(classes: list[str], descriptions: dict[str, str] | None = None) -> str:
    """A single-choice text-classification config: the text, one choice per class, what the machines said."""
    descriptions = descriptions or {}
    choices = "\n".join(
        f"    <Choice value={quoteattr(c)}" + (f" hint={quoteattr(descriptions[c])}" if descriptions.get(c) else "") + "/>"
        for c in classes)
    return f"""<View>
  <Header value="Which class fits this text?"/>
  <Text name="{TO_NAME}" value="$text"/>
  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single-radio" showInline="true" required="true">
{choices}
  </Choices>
  <Header value="What the machines said" size="6"/>
  <Text name="machines" value="$machines"/>
</View>"""


def choice_result(label: str) -> list[dict[str, Any]]:
    """The result of choosing `label` (an annotation's or a prediction's)."""
    return [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [label]}}]


def chosen_label(result: list[dict[str, Any]] | None) -> str | None:
    """The class a result chose, or None."""
    for item in result or []:
        if item.get("from_name") == FROM_NAME and item.get("type") == "choices":
            picked = (item.get("value") or {}).get("choices") or []
            if picked:
                return str(picked[0])
    return None


def make_task(row: dict[str, Any], cand: Candidate, run_name: str, model_version: str, text_field: str = "text") -> dict[str, Any]:
    """One Label Studio task: the text, every labeler's vote, and the label model's answer as a prediction."""
    votes = row.get("votes") or {}
    lines = [f"label model: {row.get('label') or 'none'} (confidence {cand.confidence:.2f})",
             f"labelers' majority: {cand.majority or 'none (tie or no votes)'}",
             *(f"{name}: {vote if vote is not None else 'abstained'}" for name, vote in votes.items())]
    if cand.reasons:
        lines.append("picked because: " + "; ".join(cand.reasons))
    task: dict[str, Any] = {"data": {
        "text": str(row.get(text_field) or ""), "machines": "\n".join(lines),
        "agentlab_run": run_name, "agentlab_row": cand.index, "agentlab_id": cand.key,
        "label_model": row.get("label"), "confidence": cand.confidence, "votes": votes,
        "majority": cand.majority, "reasons": cand.reasons,
    }}
    if row.get("label") is not None:
        task["predictions"] = [{"model_version": model_version, "score": cand.confidence,
                                "result": choice_result(str(row["label"]))}]
    return task
