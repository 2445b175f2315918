"""The request-size limit, enforced before and while the body is read (413, never a 500)."""

from __future__ import annotations

from fastapi import HTTPException

__all__ = ["UploadLimit", "drain_body", "too_large"]


def too_large(limit_bytes: int) -> HTTPException:
    """The 413 answer for a body over ``limit_bytes``."""
    mb = limit_bytes / 2**20
    return HTTPException(413, f"upload too large: the limit is {mb:g} MB (--max-upload-mb)")


async def _drain(receive, message: dict) -> None:
    """Read and drop the rest of a request body, so the client that is still sending it gets the
    answer instead of a reset connection (nothing is kept)."""
    while message.get("type") == "http.request" and message.get("more_body", False):
        message = await receive()


async def drain_body(receive) -> None:
    """Read and drop a whole request body that nothing has read yet."""
    await _drain(receive, {"type": "http.request", "more_body": True})


class UploadLimit:
    """ASGI middleware: a request whose ``Content-Length`` is over ``limit_bytes`` gets 413
    without its body being stored; a body without one (chunked) is counted as it arrives and
    stopped with 413 at the limit, so an upload never fills memory or disk past it. The rest of
    an over-limit body is read and dropped so that the client sees the 413."""

    def __init__(self, app, limit_bytes: int):
        self.app, self.limit = app, limit_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._reject(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                await _drain(receive, message)
                raise too_large(self.limit)  # FastAPI re-raises HTTPException from body parsing
            return message

        await self.app(scope, counted, send)

    async def _reject(self, scope, receive, send):
        from fastapi.responses import JSONResponse

        await drain_body(receive)
        response = JSONResponse({"detail": too_large(self.limit).detail}, status_code=413)
        await response(scope, receive, send)
