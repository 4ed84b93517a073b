"""Bearer tokens: who may call, and the name a submitted sweep records as its owner.

Tokens are kept only as SHA-256 digests, so a memory dump or a debugger shows no usable
secret, and compared with :func:`hmac.compare_digest` against every known digest, so the
time a refusal takes says nothing about how close a guess was. No token is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.errors import ApiError

_bearer = HTTPBearer(
    auto_error=False,
    description="A token from the service's REGSWEEP_API_TOKENS (name:token pairs).",
)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def parse_tokens(text: str | None) -> dict[str, str] | None:
    """``"alice:s3cret,nightly:t0k3n"`` → ``{"alice": "s3cret", ...}``; unset or blank → None
    (auth off)."""
    if text is None or not text.strip():
        return None
    tokens: dict[str, str] = {}
    for number, pair in enumerate(text.split(","), start=1):
        name, sep, token = (part.strip() for part in pair.partition(":"))
        if not sep or not name or not token:
            # Never echo the entry: it may be a token pasted without its name.
            raise ValueError(
                f"entry {number} of REGSWEEP_API_TOKENS is not a name:token pair; write "
                "comma-separated pairs such as alice:<token>,nightly:<token>"
            )
        if name in tokens:
            raise ValueError(f"REGSWEEP_API_TOKENS names {name!r} twice; keep one token per name")
        tokens[name] = token
    return tokens


class TokenRegistry:
    """The digests of the accepted tokens, by name; ``None`` turns auth off."""

    def __init__(self, tokens: Mapping[str, str] | None, *, read_only_open: bool) -> None:
        if tokens is not None and not tokens:
            raise ValueError("api_tokens is empty, so no call could succeed; give tokens or None")
        self._digests = None if tokens is None else {n: _digest(t) for n, t in tokens.items()}
        self.read_only_open = read_only_open

    @property
    def enabled(self) -> bool:
        return self._digests is not None

    def identify(self, token: str) -> str | None:
        """The name of ``token``, or None; every digest is compared, match or not."""
        assert self._digests is not None
        given, found = _digest(token), None
        for name, digest in self._digests.items():
            if hmac.compare_digest(given, digest):
                found = name
        return found


def _refuse(detail: str) -> ApiError:
    return ApiError(401, detail, field="Authorization", headers={"WWW-Authenticate": "Bearer"})


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    registry: TokenRegistry = request.app.state.tokens
    if not registry.enabled:
        return None
    if credentials is None:
        raise _refuse("send a token: Authorization: Bearer <token> (REGSWEEP_TOKEN for the CLI)")
    name = registry.identify(credentials.credentials)
    if name is None:
        raise _refuse("the bearer token is not one this service accepts; check REGSWEEP_TOKEN")
    return name


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require_writer(request: Request, credentials: Credentials) -> str | None:
    """The caller's token name (None with auth off); 401 without a valid token."""
    return _authenticate(request, credentials)


def require_reader(request: Request, credentials: Credentials) -> str | None:
    """As :func:`require_writer`, unless the service opens read-only calls to everyone."""
    registry: TokenRegistry = request.app.state.tokens
    if registry.read_only_open and credentials is None:
        return None
    return _authenticate(request, credentials)


WriterDep = Annotated[str | None, Depends(require_writer)]
ReaderDep = Annotated[str | None, Depends(require_reader)]
