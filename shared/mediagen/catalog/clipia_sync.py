"""Refresh the Clipia snapshot from the live API: ``mediagen models sync --provider clipia``.

``GET /v1/models`` (Clipia "models" page: any valid key, no scope required) with ``Authorization: Key
<key>`` ([004:136-141]); the answer is checked (every entry loads: slug, a known ``input_schema``
shape, a JSON Schema ``jsonschema`` accepts) before the snapshot file is replaced, atomically. The new
file keeps the answer exactly and records its provenance: the URL, the time, the number of entries.
Also :func:`remote_estimate`, ``POST /v1/models/{slug}/estimate`` (SDK ``models.estimate``).

Environment: ``CLIPIA_API_KEY`` (required), ``MEDIAGEN_CLIPIA_BASE_URL`` (default
``https://api.clipia.ai``, [004:111-119]). The key never appears in errors or output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mediagen.errors import MediagenError
from mediagen.redact import redact_text

DEFAULT_BASE_URL = "https://api.clipia.ai"
TIMEOUT_SECONDS = 30.0


class SyncError(MediagenError):
    """The snapshot could not be refreshed (no key, the API refused, or its answer does not load)."""

    code = "clipia_sync_failed"


def _settings(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    from mediagen.settings import Settings

    settings = Settings.from_env()  # the one reader of CLIPIA_API_KEY and MEDIAGEN_CLIPIA_BASE_URL
    key = api_key or settings.clipia_api_key.strip()
    if not key:
        raise SyncError("CLIPIA_API_KEY is not set: `models sync --provider clipia` needs a Clipia API key")
    base = (base_url or settings.clipia_base_url or DEFAULT_BASE_URL).rstrip("/")
    return base, key


def _call(method: str, url: str, key: str, body: Any = None) -> Any:
    import httpx

    try:
        response = httpx.request(method, url, json=body, timeout=TIMEOUT_SECONDS,
                                 headers={"Authorization": f"Key {key}", "Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise SyncError(redact_text(f"{method} {url} failed: {type(exc).__name__}: {exc}", [key])) from None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code >= 400:
        error = payload.get("error") if isinstance(payload, dict) else None
        detail = (f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict)
                  else response.text[:200])
        raise SyncError(redact_text(f"{method} {url} answered HTTP {response.status_code} ({detail})", [key]))
    return payload


def fetch_models(*, base_url: str | None = None, api_key: str | None = None) -> dict[str, Any]:
    """``GET /v1/models``, checked: returns the document, ready to be written as a snapshot.

    Raises:
        SyncError: no key, a transport error, an HTTP error, or an answer the catalog cannot load.
    """
    from mediagen.catalog.clipia import ClipiaCatalog

    base, key = _settings(base_url, api_key)
    url = f"{base}/v1/models"
    data = _call("GET", url, key)
    try:
        catalog = ClipiaCatalog(data)
        for model in catalog.models():
            catalog._validator(model.slug)  # the schema must be a valid JSON Schema
    except Exception as exc:  # noqa: BLE001 -- any defect of the answer is reported, nothing is written
        raise SyncError(f"GET {url}: the answer is not a usable model list: {exc}") from None
    fetched_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    entries = {m.slug: {"sources": [f"GET {url}"], "fetched_at": fetched_at} for m in catalog.models()}
    provenance = {"kind": "synced", "source": f"GET {url}", "fetched_at": fetched_at,
                  "models": len(entries), "entries": entries}
    return {"provenance": provenance, "data": data["data"]}


def sync_snapshot(path: Path | None = None, *, base_url: str | None = None,
                  api_key: str | None = None) -> dict[str, Any]:
    """Fetch (:func:`fetch_models`) and atomically replace the snapshot at ``path`` (default: the
    packaged ``clipia_models.json``). Returns the document written.

    Raises:
        SyncError: as :func:`fetch_models`; the old snapshot is then left untouched.
        OSError: the file cannot be written.
    """
    from mediagen.catalog.clipia import get_clipia_catalog, snapshot_path

    document = fetch_models(base_url=base_url, api_key=api_key)
    target = path or snapshot_path()
    temporary = target.with_suffix(target.suffix + ".tmp")
    temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(target)
    get_clipia_catalog.cache_clear()
    from mediagen.catalog import catalog_for

    catalog_for.cache_clear()
    return document


def remote_estimate(slug: str, input_obj: dict[str, Any], *, base_url: str | None = None,
                    api_key: str | None = None) -> int:
    """Credits the API quotes for ``input_obj`` on ``slug`` (``POST /v1/models/{slug}/estimate``).

    Raises:
        SyncError: no key, a transport or HTTP error (422 ``model_input_invalid`` for a bad input), or
            an answer without integer ``credits``.
    """
    base, key = _settings(base_url, api_key)
    url = f"{base}/v1/models/{quote(slug, safe='')}/estimate"
    answer = _call("POST", url, key, {"input": input_obj})
    credits = answer.get("credits") if isinstance(answer, dict) else None
    if not isinstance(credits, int) or isinstance(credits, bool):
        raise SyncError(f"POST {url}: the answer has no integer 'credits'")
    return credits
