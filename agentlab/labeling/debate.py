"""`debate` labeler: a whole multi-agent debate votes one label-matrix column (two with swap_sides)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from agentlab.debate.config import DebateSettings, yaml_words
from agentlab.errors import ConfigError
from agentlab.labeling.base import ABSTAIN, LABELERS, Labeler, LabelerConfig, Votes


class DebateLabelerConfig(LabelerConfig, DebateSettings):
    """Debaters argue, the judge decides; the decision becomes a vote through `vote_map`."""

    type: Literal["debate"] = "debate"
    vote_map: dict[str, str | None] | None = Field(
        None, description="Choice -> class (or null = abstain), e.g. `{yes: spam, no: ham}`. Default: a choice votes the class of the same name.")

    @field_validator("vote_map", mode="before")
    @classmethod
    def _vote_map_words(cls, v: Any) -> Any:
        return yaml_words(v)


@LABELERS.register("debate")
class DebateLabeler(Labeler):
    """One column from the debate's decision (the judge's probability as confidence when scored by options);
    with `swap_sides`, a second column from the reversed speaking order."""

    config_cls = DebateLabelerConfig

    @property
    def name(self) -> str:
        return self.config.name or f"debate@{self.config.judge.model}"

    def _votes_for(self) -> dict[str, int]:
        cfg, out = self.config, {}
        for choice in cfg.answer.choices:
            target = cfg.vote_map.get(choice) if cfg.vote_map is not None else choice  # unmapped choice: abstain
            cls = self.space.index(target) if target is not None else ABSTAIN
            if target is not None and cls == ABSTAIN:
                raise ConfigError(f"labeler {self.name}: vote_map sends {choice!r} to {target!r}, not a class; classes: {', '.join(self.space.names)}")
            out[choice] = cls
        if all(v == ABSTAIN for v in out.values()):
            raise ConfigError(f"labeler {self.name}: no choice ({', '.join(cfg.answer.choices)}) maps to a class; set `vote_map`")
        return out

    def label(self, ctx, rows):
        from agentlab.debate.run import Debate

        cfg, votes_for = self.config, self._votes_for()
        debate = Debate(cfg, ctx, len(rows))
        debate.check_rows(rows)
        runs = [debate.run(rows, cfg.debaters, self.name)]
        names = [self.name]
        if cfg.swap_sides:
            runs.append(debate.run(rows, cfg.debaters[::-1], f"{self.name} (swapped order)"))
            names.append(f"{self.name}_swapped")
        cols = [self._column(name, outcomes, votes_for) for name, outcomes in zip(names, runs)]
        return Votes(names, np.concatenate([c.votes for c in cols], 1), np.concatenate([c.confidence for c in cols], 1),
                     [c.raw[0] for c in cols], [c.faults[0] for c in cols])

    def planned_calls(self, ctx, rows):
        """The debate's calls (twice with `swap_sides`)."""
        from agentlab.debate.plan import plan_debate
        from agentlab.debate.run import Debate

        debate = Debate(self.config, ctx, len(rows))
        out = plan_debate(debate, rows, self.config.debaters, self.name)
        if self.config.swap_sides:
            out += plan_debate(debate, rows, self.config.debaters[::-1], f"{self.name} (swapped order)")
        return out

    def _column(self, name, outcomes, votes_for) -> Votes:
        out = Votes.single(name, len(outcomes))
        for i, o in enumerate(outcomes):
            if o.decision is None:
                out.faults[0] += 1
                out.raw[0][i] = o.verdict.raw or o.verdict.error
                continue
            out.votes[i, 0] = votes_for[o.decision]
            if o.source == "judge" and o.verdict.confidence is not None:
                out.confidence[i, 0] = o.verdict.confidence
        return out
