"""Webhooks over HTTP: one POST at a time, to a checked and pinned address, never raising.

:func:`post_webhook` makes one attempt and says whether it was delivered and whether another
attempt may succeed: connection errors, timeouts, DNS failures, HTTP 5xx and 429 are worth
retrying; other answers (4xx, redirects, a certificate that does not verify, a refused
target) are final. The outbox's deliverer (:mod:`regcore.notify.announce`) schedules the retries;
:func:`send_webhook` retries in place with backoff, for a caller with no outbox.

The host is checked by :class:`~regcore.notify.targets.WebhookTargets` before every
attempt, and the connection goes to the addresses that check resolved (with the URL's host
in the Host header and for TLS), so DNS cannot point it elsewhere in between. Redirects are
not followed, and the environment's proxies are not used: either would send the request
somewhere unchecked.

A webhook URL often carries its secret (a token in the query, or the path itself, as
Slack's do), so logs and outcomes name only its scheme and host.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import logging
import socket
import ssl
import threading
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import unquote, urlsplit

from regcore.notify.targets import Target, TargetRefusedError, WebhookTargets
from regcore.sweeps.export import jsonable

__all__ = ["MAX_WAIT_S", "USER_AGENT", "Attempt", "encode", "post_webhook", "send_webhook", "where"]

_log = logging.getLogger(__name__)

try:
    USER_AGENT = f"regsweep/{version('regsweep')} (webhook)"
except PackageNotFoundError:  # running from a source tree that was never installed
    USER_AGENT = "regsweep (webhook)"

#: The longest wait between two attempts, whatever the backoff or a Retry-After asks.
MAX_WAIT_S = 60.0


@dataclass(frozen=True)
class Attempt:
    """How one POST went; ``outcome`` is safe to log (no part of the URL but its host)."""

    delivered: bool
    retry: bool
    outcome: str
    wait_s: float = 0.0  # the least wait before the next attempt (a 429's Retry-After)


def where(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL with a host (what logs may show), else None."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + ("" if port is None else f":{port}")


def encode(payload: Mapping[str, Any]) -> bytes | None:
    """``payload`` as JSON bytes (non-finite floats as null), or None (logged) if it is not."""
    try:
        return json.dumps(jsonable(payload), allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: a cycle
        _log.warning("webhook not sent: the payload is not JSON (%s)", exc)
        return None


@functools.cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def _connect(addresses: tuple[str, ...], port: int, timeout: float | None) -> socket.socket:
    error: OSError = OSError("no address to connect to")
    for address in addresses:  # as socket.create_connection tries a name's addresses
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    raise error


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout_s: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout_s)
        self._addresses = target.addresses

    def connect(self) -> None:
        self.sock = _connect(self._addresses, self.port, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout_s: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout_s, context=_tls())
        self._addresses = target.addresses

    def connect(self) -> None:
        sock = _connect(self._addresses, self.port, self.timeout)
        self.sock = _tls().wrap_socket(sock, server_hostname=self.host)


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value or ""))
    except ValueError:  # absent, or an HTTP date: the backoff decides
        return 0.0


def _headers(url: str, key: str | None) -> tuple[str, dict[str, str]]:
    """The request target (path and query) and the headers of a POST to ``url``."""
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if key is not None:
        headers["Idempotency-Key"] = key
    if parts.username is not None:
        # Credentials in the URL go as Basic auth (as curl and requests send them).
        user, password = unquote(parts.username), unquote(parts.password or "")
        headers["Authorization"] = "Basic " + b64encode(f"{user}:{password}".encode()).decode()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return path, headers


def post_webhook(
    url: str,
    body: bytes,
    *,
    targets: WebhookTargets,
    key: str | None = None,
    timeout_s: float = 10.0,
) -> Attempt:
    """One POST of ``body`` (JSON) to ``url``, with ``Idempotency-Key: key`` if given."""
    try:
        target = targets.resolve(url)
    except TargetRefusedError as exc:
        return Attempt(False, False, f"refused: {exc}")
    except ValueError as exc:  # no http(s) scheme or host, a bad port, a bad IDNA name
        return Attempt(False, False, f"invalid URL ({type(exc).__name__})")
    except OSError as exc:  # the name does not resolve now
        return Attempt(False, True, f"DNS lookup failed ({type(exc).__name__})")
    kind = _PinnedHTTPS if urlsplit(url).scheme == "https" else _PinnedHTTP
    connection = kind(target, timeout_s)
    try:
        path, headers = _headers(url, key)
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        if 200 <= response.status < 300:
            # Delivered once a 2xx status is in: a body cut short must not cause a repeat.
            with contextlib.suppress(OSError, http.client.HTTPException):
                response.read(65536)
            return Attempt(True, False, f"HTTP {response.status}")
        retry = response.status == 429 or response.status >= 500
        wait_s = _retry_after(response.getheader("Retry-After")) if retry else 0.0
        return Attempt(False, retry, f"HTTP {response.status}", wait_s)
    except ssl.SSLCertVerificationError as exc:  # will not verify on the next try either
        return Attempt(False, False, f"SSLCertVerificationError: {exc.verify_message}")
    except (http.client.InvalidURL, ValueError) as exc:  # e.g. a space in the path
        return Attempt(False, False, f"invalid URL ({type(exc).__name__})")
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, bad answer
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else None
        return Attempt(False, True, type(exc).__name__ + (f": {reason}" if reason else ""))
    except Exception as exc:  # a webhook must never take its caller down
        return Attempt(False, True, f"unexpected {type(exc).__name__}")
    finally:
        connection.close()


def _check(*, attempts: int, backoff_s: float, timeout_s: float) -> None:
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, but got {attempts=}")
    if backoff_s < 0:
        raise ValueError(f"backoff_s must be 0 or more, but got {backoff_s=}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, but got {timeout_s=}")


def send_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    targets: WebhookTargets | None = None,
    key: str | None = None,
    attempts: int = 5,
    backoff_s: float = 1.0,
    timeout_s: float = 10.0,
    stop: threading.Event | None = None,
) -> bool:
    """POST ``payload`` as JSON to ``url``; True once a 2xx answer came back.

    Up to ``attempts`` tries, waiting ``backoff_s``, then twice as long each time (at most
    :data:`MAX_WAIT_S`, at least what a 429's ``Retry-After`` asks); the waits are on
    ``stop``, so once it is set no further attempt is made. ``targets`` decides which hosts
    may be reached (default: none that is loopback, link-local or private). Raises only
    ValueError for nonsensical ``attempts``, ``backoff_s`` or ``timeout_s``; every delivery
    problem is False and a warning.
    """
    _check(attempts=attempts, backoff_s=backoff_s, timeout_s=timeout_s)
    shown = where(url)
    if shown is None:
        try:
            scheme = urlsplit(url).scheme
        except ValueError:
            scheme = ""
        scheme = scheme if scheme.isalnum() else "?"  # never echo what may be a secret
        _log.warning("webhook not sent: use an http:// or https:// URL with a host (%s)", scheme)
        return False
    body = encode(payload)
    if body is None:
        return False
    targets = targets or WebhookTargets()
    stop = stop or threading.Event()  # never set: the waits then run their full length
    for attempt in range(1, attempts + 1):
        result = post_webhook(url, body, targets=targets, key=key, timeout_s=timeout_s)
        if result.delivered:
            return True
        if not result.retry:
            _log.warning("webhook to %s not delivered: %s (not retried)", shown, result.outcome)
            return False
        if attempt == attempts:
            _log.warning(
                "webhook to %s not delivered after %d attempts: %s", shown, attempts, result.outcome
            )
            return False
        wait_s = min(MAX_WAIT_S, max(backoff_s * 2 ** (attempt - 1), result.wait_s))
        _log.info(
            "webhook to %s: attempt %d of %d failed (%s); next in %g s",
            *(shown, attempt, attempts, result.outcome, wait_s),
        )
        if stop.wait(wait_s):
            _log.warning("webhook to %s not delivered: stopped (%s)", shown, result.outcome)
            return False
    return False  # pragma: no cover (the loop returns)
