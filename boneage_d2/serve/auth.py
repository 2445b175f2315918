"""Optional API-key authentication: keys from a file and/or an environment variable, sent as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

from .limits import drain_body

__all__ = [
    "API_KEYS_ENV",
    "MIN_KEY_LENGTH",
    "OPEN_PATHS",
    "ApiKeyAuth",
    "key_matches",
    "load_api_keys",
]

API_KEYS_ENV = "BONEAGE_API_KEYS"
MIN_KEY_LENGTH = 16
# Paths served without a key: liveness, and the API's own description (no data, no paths).
OPEN_PATHS = ("/health", "/openapi.json", "/docs")
_REALM = 'Bearer realm="boneage-d2"'


def _checked(keys: list[tuple[str, str]]) -> tuple[bytes, ...]:
    for key, where in keys:
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(
                f"{where}: an API key of {len(key)} characters; use at least {MIN_KEY_LENGTH} "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
    return tuple(hashlib.sha256(k.encode()).digest() for k, _ in keys)


def load_api_keys(path: str | None = None, environ: Mapping[str, str] | None = None) -> tuple:
    """The accepted keys (as SHA-256 digests): one per line of ``path`` (blank lines and ``#``
    comments skipped) plus the comma- or space-separated ``BONEAGE_API_KEYS`` of ``environ``
    (``os.environ`` by default). Empty: authentication off. ``ValueError`` naming the file and
    line (or the variable) for an unreadable file, a file without keys or a key too short."""
    environ = os.environ if environ is None else environ
    keys: list[tuple[str, str]] = []
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise ValueError(f"--api-keys-file {path}: cannot read ({e.strerror or e})") from e
        found = [
            (line.strip(), f"--api-keys-file {path}, line {n}")
            for n, line in enumerate(lines, start=1)
            if line.strip() and not line.strip().startswith("#")
        ]
        if not found:
            raise ValueError(f"--api-keys-file {path}: no keys in it (one key per line)")
        keys += found
    text = environ.get(API_KEYS_ENV, "")
    keys += [(k, API_KEYS_ENV) for k in text.replace(",", " ").split()]
    return _checked(keys)


def key_matches(presented: str, digests: tuple[bytes, ...]) -> bool:
    """Whether ``presented`` is one of the keys, comparing fixed-length digests in constant
    time and always against every key (no early exit, no length leak)."""
    mine = hashlib.sha256(presented.encode()).digest()
    found = False
    for digest in digests:
        found |= hmac.compare_digest(mine, digest)
    return found


def _presented_key(headers: dict[bytes, bytes]) -> str | None:
    auth = headers.get(b"authorization", b"").decode("latin-1").strip()
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
    return key or None


def _is_open(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in OPEN_PATHS)


class ApiKeyAuth:
    """ASGI middleware: an HTTP request to any path but ``OPEN_PATHS`` needs a valid key, else
    401 with ``WWW-Authenticate`` (its body read and dropped first, so the client sees it)."""

    def __init__(self, app, digests: tuple[bytes, ...]):
        self.app, self.digests = app, digests

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or _is_open(scope.get("path", "")):
            return await self.app(scope, receive, send)
        key = _presented_key(dict(scope.get("headers") or []))
        if key is not None and key_matches(key, self.digests):
            return await self.app(scope, receive, send)
        from fastapi.responses import JSONResponse

        detail = (
            "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            if key is None
            else "invalid API key"
        )
        challenge = _REALM if key is None else _REALM + ', error="invalid_token"'
        await drain_body(receive)
        response = JSONResponse(
            {"detail": detail}, status_code=401, headers={"WWW-Authenticate": challenge}
        )
        await response(scope, receive, send)
