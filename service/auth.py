"""Bearer tokens: who may call, with which role, and the name a submitted sweep records as
its owner.

Roles (``name:token:role`` in REGSWEEP_API_TOKENS; ``name:token`` is ``submit``):

- ``read``: every GET (sweeps of every owner, trials, reports, batches, workers).
- ``submit``: as read, and submit sweeps and batches; cancel and delete only its own sweeps
  (those whose ``owner`` is its name).
- ``admin``: everything, on every sweep, also those submitted without a token.

Reading is open to every role on purpose: sweeps are the team's shared results, and what a
reader must not see (webhook URLs' secrets) is redacted everywhere. Managing is the owner's
or an admin's. With auth off (no tokens) every caller may do everything, as before roles.

Tokens are kept only as SHA-256 digests, so a memory dump or a debugger shows no usable
secret, and compared with :func:`hmac.compare_digest` against every known digest, so the
time a refusal takes says nothing about how close a guess was. No token is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal, get_args

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from regcore.service.errors import ApiError

Role = Literal["admin", "submit", "read"]
ROLES: tuple[Role, ...] = get_args(Role)
_SETTING = "REGSWEEP_API_TOKENS"

_bearer = HTTPBearer(
    auto_error=False,
    description=(
        "A token from the service's REGSWEEP_API_TOKENS (name:token, or name:token:role "
        "with role admin, submit or read)."
    ),
)


@dataclass(frozen=True, kw_only=True)
class ApiToken:
    """A token's secret and its role (``submit`` unless the setting names another)."""

    secret: str = field(repr=False)
    role: Role = "submit"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def parse_tokens(text: str | None) -> dict[str, ApiToken] | None:
    """``"ops:t0k3n:admin,alice:s3cret"`` → ``{"ops": ApiToken(role="admin"), "alice":
    ApiToken(role="submit")}``; unset or blank → None (auth off).

    A last ``:part`` that is a role name is the role; otherwise it belongs to the token, so
    a ``name:token`` entry means what it always did, colons in the token included.
    """
    if text is None or not text.strip():
        return None
    tokens: dict[str, ApiToken] = {}
    for number, entry in enumerate(text.split(","), start=1):
        name, sep, secret = (part.strip() for part in entry.partition(":"))
        rest, colon, last = secret.rpartition(":")
        role: Role = "submit"
        if colon and last in ROLES:
            secret, role = rest.strip(), last
        if not sep or not name or not secret:
            # Never echo the entry: it may be a token pasted without its name.
            raise ValueError(
                f"entry {number} of {_SETTING} is not name:token or name:token:role; write "
                "comma-separated entries such as ops:<token>:admin,alice:<token> (roles: "
                f"{', '.join(ROLES)}; without one, submit)"
            )
        if name in tokens:
            raise ValueError(f"{_SETTING} names {name!r} twice; keep one token per name")
        tokens[name] = ApiToken(secret=secret, role=role)
    return tokens


@dataclass(frozen=True)
class Caller:
    """Who is calling: the token's name (None with auth off, or anonymous with
    ``read_only_open``) and its role."""

    name: str | None
    role: Role

    def describe(self) -> str:
        return "an anonymous caller" if self.name is None else f"token {self.name!r}"


class TokenRegistry:
    """The digests of the accepted tokens, by name, with their roles; ``None`` turns auth
    off. A plain string for a token is the ``submit`` role."""

    def __init__(
        self, tokens: Mapping[str, str | ApiToken] | None, *, read_only_open: bool
    ) -> None:
        if tokens is not None and not tokens:
            raise ValueError("api_tokens is empty, so no call could succeed; give tokens or None")
        self._digests: dict[str, bytes] | None = None
        self._roles: dict[str, Role] = {}
        if tokens is not None:
            given = {
                n: t if isinstance(t, ApiToken) else ApiToken(secret=t) for n, t in tokens.items()
            }
            for name, token in given.items():
                if token.role not in ROLES:
                    raise ValueError(
                        f"token {name!r} has role {token.role!r}; use one of {', '.join(ROLES)}"
                    )
            self._digests = {n: _digest(t.secret) for n, t in given.items()}
            self._roles = {n: t.role for n, t in given.items()}
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

    def role_of(self, name: str) -> Role:
        return self._roles[name]


def _refuse(detail: str) -> ApiError:
    return ApiError(401, detail, field="Authorization", headers={"WWW-Authenticate": "Bearer"})


def forbidden(caller: Caller, action: str, why: str) -> ApiError:
    """403 naming who was refused what, and why."""
    return ApiError(403, f"{caller.describe()} may not {action}: {why}", field="Authorization")


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    registry: TokenRegistry = request.app.state.tokens
    if not registry.enabled:
        return Caller(None, "admin")
    if credentials is None:
        raise _refuse("send a token: Authorization: Bearer <token> (REGSWEEP_TOKEN for the CLI)")
    name = registry.identify(credentials.credentials)
    if name is None:
        raise _refuse("the bearer token is not one this service accepts; check REGSWEEP_TOKEN")
    return Caller(name, registry.role_of(name))


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require_reader(request: Request, credentials: Credentials) -> Caller:
    """Any valid token (401 without one), or no token when the service opens read-only
    calls to everyone."""
    registry: TokenRegistry = request.app.state.tokens
    if registry.enabled and registry.read_only_open and credentials is None:
        return Caller(None, "read")
    return _authenticate(request, credentials)


def require_submitter(request: Request, credentials: Credentials) -> Caller:
    """A token that may submit (role submit or admin); 401 without a valid token, 403 for a
    read-only one."""
    caller = _authenticate(request, credentials)
    if caller.role == "read":
        raise forbidden(
            caller,
            f"{request.method} {request.url.path}",
            f"its role is read; submitting and managing sweeps needs a token with role "
            f"submit or admin ({_SETTING}: name:token or name:token:admin)",
        )
    return caller


def require_manager(caller: Caller, *, owner: str | None, action: str) -> None:
    """403 unless ``caller`` may ``action`` (cancel, delete) a sweep owned by ``owner``:
    its owner's token or an admin's."""
    if caller.role == "admin" or (caller.name is not None and caller.name == owner):
        return
    whose = f"token {owner!r}" if owner is not None else "no token (submitted with auth off)"
    raise forbidden(
        caller,
        action,
        f"it was submitted by {whose}, and only its owner or a token with role admin "
        f"may change it; ask them, or use an admin token ({_SETTING}: name:token:admin)",
    )


ReaderDep = Annotated[Caller, Depends(require_reader)]
SubmitterDep = Annotated[Caller, Depends(require_submitter)]
