"""One error hierarchy. Only the CLI turns these into messages and exit codes."""

from __future__ import annotations


class AgentlabError(Exception):
    """Base class of every error agentlab raises on purpose."""

    exit_code = 1


class RecipeError(AgentlabError):
    """The recipe is invalid. Carries the recipe path, the bad value and the fix."""

    exit_code = 2

    def __init__(self, path: str, message: str, value: object = None, fix: str | None = None):
        self.path, self.value, self.fix = path, value, fix
        text = f"{path}: {message}" if path else message
        if value is not None:
            text += f" (got {value!r})"
        if fix:
            text += f". Fix: {fix}"
        super().__init__(text)


class RecipeErrors(AgentlabError):
    """Several recipe errors found in one validation pass."""

    exit_code = 2

    def __init__(self, errors: list[RecipeError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class ConfigError(AgentlabError):
    """A setting outside the recipe (CLI flag, environment, missing file) is wrong."""

    exit_code = 2


class DataError(AgentlabError):
    """An input file (source rows, seed file, template) cannot be used as it is.

    Names the file, where in it (line, column) when known, the recipe field that named it, and the fix.
    """

    exit_code = 2

    def __init__(self, file: object, message: str, *, line: int | None = None, column: int | None = None,
                 field: str | None = None, fix: str | None = None):
        self.file, self.line, self.column, self.field, self.fix = str(file), line, column, field, fix
        where = self.file + (f" ({field})" if field else "")
        where += (f", line {line}" if line is not None else "") + (f", column {column}" if column is not None else "")
        super().__init__(f"{where}: {message}" + (f". Fix: {fix}" if fix else ""))


class BackendError(AgentlabError):
    """A backend could not be built or used at all (missing package, no GPU, bad model path)."""


class BackendUnavailable(BackendError):
    """An optional dependency or a device a backend needs is missing."""


class TransportError(BackendError):
    """One attempt of a call failed in transport (connection, timeout, 5xx, unreadable body). Retryable.

    Backends retry these themselves and turn the last one into an error result (a failed call is data);
    `status` is the HTTP status when there was one, `retry_after` the seconds the server asked us to wait.
    """

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        self.status, self.retry_after = status, retry_after
        super().__init__(message)


class RateLimitError(TransportError):
    """The server asked us to slow down (HTTP 429); `retry_after` is in seconds when it said so."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message, status=429, retry_after=retry_after)


class TrainingError(AgentlabError):
    """A student could not be trained or loaded."""


class RemoteError(AgentlabError):
    """A remote service we publish to or review in (the Hugging Face Hub, a Label Studio server) failed a request."""

    def __init__(self, message: str, status: int | None = None):
        self.status = status
        super().__init__(message)
