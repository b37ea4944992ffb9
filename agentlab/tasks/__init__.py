"""Tasks, registered by name in :data:`TASKS`."""

from agentlab.tasks.base import TASKS, LLMTask, Task, TaskConfig

__all__ = ["TASKS", "LLMTask", "Task", "TaskConfig"]
