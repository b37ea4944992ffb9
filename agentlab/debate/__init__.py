"""Multi-agent debate annotation (METHODS.md §5): debaters argue, the judge alone decides."""

from agentlab.debate.config import (
    AnswerConfig,
    DebaterConfig,
    DebateSettings,
    JudgeConfig,
)
from agentlab.debate.run import Debate, Outcome, Turn, Verdict

__all__ = ["AnswerConfig", "Debate", "DebateSettings", "DebaterConfig", "JudgeConfig", "Outcome", "Turn", "Verdict"]
