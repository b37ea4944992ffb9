"""A small Label Studio REST client (httpx): the six calls agentlab's review loop needs.

Why not label-studio-sdk: it pulls opencv, nltk, a code generator and exact pins (pyjwt, requests-mock) into
the user's environment for what is here about a hundred lines over an HTTP client we already depend on.
Both kinds of Label Studio API key work: a personal access token (a JWT refresh token, the default since
1.17: exchanged for a short-lived access token, renewed when it expires) and a legacy token.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from agentlab.errors import ConfigError, RemoteError

API_KEY_ENV = "LABEL_STUDIO_API_KEY"


def is_personal_access_token(key: str) -> bool:
    """True for a JWT (a personal access token), False for a legacy token."""
    parts = key.split(".")
    if len(parts) != 3:
        return False
    try:
        head = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except ValueError:
        return False
    return isinstance(head, dict) and "alg" in head


class LabelStudio:
    """A Label Studio server at `url`, authenticated with `api_key`."""

    def __init__(self, url: str, api_key: str, timeout: float = 60.0, transport: Any = None):
        import httpx

        if not api_key:
            raise ConfigError(f"no Label Studio API key: set {API_KEY_ENV} (Account & Settings -> Personal Access Token)")
        self.url = url.rstrip("/")
        self._key, self._pat = api_key, is_personal_access_token(api_key)
        self._access: str | None = None
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> LabelStudio:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------------
    def _auth(self, renew: bool = False) -> dict[str, str]:
        if not self._pat:
            return {"Authorization": f"Token {self._key}"}
        if self._access is None or renew:
            data = self._send("POST", "/api/token/refresh", {}, json={"refresh": self._key})
            self._access = data["access"]
        return {"Authorization": f"Bearer {self._access}"}

    def request(self, method: str, path: str, **kw) -> Any:
        """One API call; JSON in and out. A 401 with a personal access token renews the access token once."""
        try:
            return self._send(method, path, self._auth(), **kw)
        except RemoteError as exc:
            if exc.status != 401 or not self._pat:
                raise
            return self._send(method, path, self._auth(renew=True), **kw)

    def _send(self, method: str, path: str, headers: dict[str, str], **kw) -> Any:
        import httpx

        try:
            resp = self._http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach Label Studio at {self.url} ({type(exc).__name__}: {exc}); is it running?") from None
        if resp.status_code >= 400:
            detail = resp.text[:300]
            try:
                detail = resp.json().get("detail") or detail
            except ValueError:
                pass
            hint = f" (check {API_KEY_ENV})" if resp.status_code in (401, 403) else ""
            raise RemoteError(f"Label Studio {method} {path} -> {resp.status_code}: {detail}{hint}", resp.status_code)
        return resp.json() if resp.content else None

    # -- projects ------------------------------------------------------------------------------
    def projects(self) -> list[dict[str, Any]]:
        """Every project this key can see."""
        out, page = [], 1
        while True:
            data = self.request("GET", "/api/projects", params={"page": page, "page_size": 100})
            if isinstance(data, list):  # older servers return a plain list
                return data
            out += data.get("results") or []
            if not data.get("next"):
                return out
            page += 1

    def project(self, project_id: int) -> dict[str, Any] | None:
        """One project, or None when it does not exist (deleted, another server)."""
        try:
            return self.request("GET", f"/api/projects/{project_id}")
        except RemoteError as exc:
            if exc.status == 404:
                return None
            raise

    def create_project(self, title: str, label_config: str, description: str = "") -> dict[str, Any]:
        """A new project with this labeling config."""
        return self.request("POST", "/api/projects", json={"title": title, "label_config": label_config,
                                                           "description": description})

    def update_project(self, project_id: int, **fields: Any) -> dict[str, Any]:
        """Change a project's fields (e.g. `label_config`)."""
        return self.request("PATCH", f"/api/projects/{project_id}", json=fields)

    def user_emails(self) -> dict[int, str]:
        """User id -> email, for naming annotators (empty when this key may not list users)."""
        try:
            users = self.request("GET", "/api/users")
        except RemoteError:
            return {}
        return {u["id"]: u.get("email") or u.get("username") or str(u["id"]) for u in users or [] if isinstance(u, dict) and "id" in u}

    # -- tasks ---------------------------------------------------------------------------------
    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> dict[str, Any]:
        """Import tasks (`data` plus optional `predictions`) into a project."""
        return self.request("POST", f"/api/projects/{project_id}/import", json=tasks)

    def export(self, project_id: int, all_tasks: bool = False) -> list[dict[str, Any]]:
        """Tasks with their annotations (only annotated ones unless `all_tasks`)."""
        return self.request("GET", f"/api/projects/{project_id}/export",
                            params={"exportType": "JSON", "download_all_tasks": str(all_tasks).lower()})

    def annotate(self, task_id: int, result: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        """Submit an annotation for a task, as the labeling UI does when a person presses Submit."""
        return self.request("POST", f"/api/tasks/{task_id}/annotations", json={"result": result, **fields})
