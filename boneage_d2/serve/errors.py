"""Request ids and generic 500s: every answer carries ``X-Request-ID``; an unhandled error is
logged with its traceback under that id, and the client gets only the id."""

from __future__ import annotations

import logging
import uuid

__all__ = ["REQUEST_ID_HEADER", "RequestIds"]

REQUEST_ID_HEADER = "X-Request-ID"
logger = logging.getLogger("boneage_d2.serve")


class RequestIds:
    """ASGI middleware (the outermost): gives each HTTP request a fresh id (``scope["state"]
    ["request_id"]``; a client's own id is not trusted into the log), adds it to the answer's
    headers, and turns an unhandled exception into ``500 {"detail", "request_id"}``."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.lower().encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("request %s (%s %s) failed", rid, scope["method"], scope["path"])
            if started:
                return
            from fastapi.responses import JSONResponse

            body = {"detail": f"internal error (request id {rid})", "request_id": rid}
            await JSONResponse(body, status_code=500)(scope, receive, send_with_id)
