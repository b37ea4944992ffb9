"""A lean HTTP client for OpenAI-compatible chat servers (`aiohttp`), with the `openai` client's call shape.

The ``openai`` backend spends most of its client CPU inside the official client (request options,
``httpx``, pydantic parsing of every response): about 1.2 ms a call. :class:`LeanClient` sends the same
JSON with one shared ``aiohttp`` session (a connection pool sized to ``max_in_flight``) and reads the
answer as plain dicts behind attribute access, at a fraction of that cost. It raises the ``openai``
package's own exception types (built from the status, headers and body), so the backend's retries,
``Retry-After`` handling, rate limits and structured-output fallbacks work unchanged. The backend
keeps the official client where its features are needed (``transport: openai``, or when ``aiohttp``
is not installed).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_STATUS_ERRORS = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
                  404: "NotFoundError", 409: "ConflictError", 422: "UnprocessableEntityError", 429: "RateLimitError"}

try:  # orjson parses a response several times faster than json, when it is installed
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads


def available() -> bool:
    """True when aiohttp is installed."""
    return importlib.util.find_spec("aiohttp") is not None


class Obj:
    """A JSON object read through attributes (`resp.choices[0].message.content`); missing keys read as None."""

    __slots__ = ("_d",)

    def __init__(self, d: dict[str, Any]):
        self._d = d

    def __getattr__(self, name: str) -> Any:
        return wrap(self._d.get(name))

    def model_dump(self) -> dict[str, Any]:
        """The underlying dict."""
        return self._d


def wrap(v: Any) -> Any:
    """`v` with dicts (also inside lists) behind :class:`Obj`."""
    if isinstance(v, dict):
        return Obj(v)
    if isinstance(v, list):
        return [Obj(x) if isinstance(x, dict) else x for x in v]
    return v


class _Completions:
    def __init__(self, client: LeanClient):
        self._client = client

    async def create(self, **params: Any) -> Obj:
        """POST /chat/completions with `params` (as `openai`'s `chat.completions.create` takes them)."""
        return await self._client.post("/chat/completions", params)


class _Chat:
    def __init__(self, client: LeanClient):
        self.completions = _Completions(client)


class LeanClient:
    """An asynchronous OpenAI-compatible client: `await client.chat.completions.create(**params)`.

    Args:
        base_url: the API root (e.g. http://localhost:8000/v1).
        api_key: sent as a bearer token.
        timeout: seconds for one attempt (connect + answer).
        pool: most connections kept open (the backend's ``max_in_flight``).
    """

    def __init__(self, base_url: str, api_key: str, timeout: float, pool: int):
        import aiohttp

        parts = urlsplit(base_url)  # keep a query string (e.g. Azure's api-version) after the joined path
        self._url = lambda path: urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, ""))
        self.chat = _Chat(self)
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                         "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=pool, limit_per_host=pool,
                                                                             ttl_dns_cache=300),
                                              timeout=self._timeout, raise_for_status=False)

    async def post(self, path: str, params: dict[str, Any]) -> Obj:
        """One attempt: the parsed answer, or the `openai` exception a failure maps to."""
        import aiohttp

        body = dict(params)
        body.update(body.pop("extra_body", None) or {})
        url = self._url(path)
        try:
            async with self._session.post(url, data=json.dumps(body), headers=self._headers) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise status_error(resp.status, dict(resp.headers), raw, url)
        except asyncio.TimeoutError:
            raise _timeout(url) from None
        except aiohttp.ClientError as exc:
            raise _connection(url, exc) from None
        return Obj(_loads(raw))  # a bad body is a ValueError: transient, like the openai client's

    async def close(self) -> None:
        """Close the session and its connections."""
        await self._session.close()


def _request(url: str) -> Any:
    import httpx

    return httpx.Request("POST", url)


def status_error(status: int, headers: dict[str, str], raw: bytes, url: str) -> Exception:
    """The `openai` exception for an HTTP error answer (its message from the body's `error.message`)."""
    import httpx
    import openai

    try:
        body: Any = _loads(raw)
    except ValueError:
        body = raw.decode("utf-8", "replace")
    err = body.get("error", body) if isinstance(body, dict) else body
    detail = (err.get("message") if isinstance(err, dict) else None) or (body if isinstance(body, str) else json.dumps(body))
    name = _STATUS_ERRORS.get(status, "InternalServerError" if status >= 500 else "APIStatusError")
    cls = getattr(openai, name)
    response = httpx.Response(status, headers=headers, content=raw, request=_request(url))
    return cls(f"Error code: {status} - {detail}", response=response, body=err)


def _timeout(url: str) -> Exception:
    import openai

    return openai.APITimeoutError(request=_request(url))


def _connection(url: str, exc: Exception) -> Exception:
    import openai

    return openai.APIConnectionError(message=f"Connection error: {type(exc).__name__}: {exc}", request=_request(url))
