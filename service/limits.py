"""A cap on request bodies, checked before any route reads one.

``Content-Length`` alone is not enough: a chunked upload has none and a client may lie, so
the body is also counted as it streams in, and buffered (at most the cap) so that the
route sees it unchanged. Either way an oversized body gets a 413 in the service's error shape
and is never parsed.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from regcore.service.errors import error_response

MIB = 1024 * 1024


class BodyLimitMiddleware:
    """Pure ASGI, so it also guards routes that read the body themselves."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        if max_body_bytes < 0:
            raise ValueError(f"max_body_bytes must be ≥ 0, but got {max_body_bytes=}")
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _too_large(self) -> str:
        return (
            f"the request body is over the limit of {self.max_body_bytes} bytes; "
            "send a smaller spec (large data belongs in the workload, not the request)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size < 0:
                response = error_response(
                    400,
                    "Content-Length is not a whole number of bytes; fix the client",
                    field="Content-Length",
                )
                await response(scope, receive, send)
                return
            if size > self.max_body_bytes:
                await error_response(413, self._too_large())(scope, receive, send)
                return
        buffered: list[Message] = []
        total = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break  # the client went away; let the app see that
            total += len(message.get("body", b""))
            if total > self.max_body_bytes:
                await error_response(413, self._too_large())(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)
