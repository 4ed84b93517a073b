"""Webhooks: tell a URL that a sweep ended, without ever holding up or crashing the caller.

:func:`send_webhook` POSTs JSON with the standard library and retries what may pass
(connection errors, timeouts, HTTP 5xx and 429) with exponential backoff; other answers
(4xx, redirects) are final. It never raises on a delivery problem: it returns False and
logs a warning. The waits between attempts are on a ``stop`` event, so a worker that is
shutting down is held for at most one request's timeout.

A webhook URL often carries its secret (a token in the query, or the path itself, as
Slack's do), so logs name only its scheme and host.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import ssl
import threading
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from regcore.export import jsonable

__all__ = ["USER_AGENT", "notify_in_background", "send_webhook"]

_log = logging.getLogger(__name__)

try:
    USER_AGENT = f"regsweep/{version('regsweep')} (webhook)"
except PackageNotFoundError:  # running from a source tree that was never installed
    USER_AGENT = "regsweep (webhook)"

#: The longest wait between two attempts, whatever the backoff or a Retry-After asks.
MAX_WAIT_S = 60.0


def _where(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL with a host, else None."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + ("" if port is None else f":{port}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would follow a 301/302/303 as a GET without the body (a "delivery" that lost
    # the payload) and could carry the secret URL's request to another host.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _retry_after(error: urllib.error.HTTPError) -> float:
    try:
        return max(0.0, float(error.headers.get("Retry-After", "")))
    except (TypeError, ValueError):  # absent, or an HTTP date: the backoff decides
        return 0.0


def _request(url: str, body: bytes) -> urllib.request.Request:
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    parts = urlsplit(url)
    if parts.username is not None:
        # urllib does not use credentials in the URL (curl and requests do): send them as
        # Basic auth to the URL without them.
        user, password = unquote(parts.username), unquote(parts.password or "")
        headers["Authorization"] = "Basic " + b64encode(f"{user}:{password}".encode()).decode()
        netloc = parts.netloc.rpartition("@")[2]
        url = urlunsplit(parts._replace(netloc=netloc))
    return urllib.request.Request(url, data=body, method="POST", headers=headers)


def _attempt(request: urllib.request.Request, timeout_s: float) -> tuple[bool, bool, str, float]:
    """One POST: (delivered, worth retrying, what happened, least wait before the next)."""
    try:
        with _opener.open(request, timeout=timeout_s) as response:
            # Delivered once a 2xx status is in: a body cut short must not cause a repeat.
            with contextlib.suppress(OSError, http.client.HTTPException):
                response.read(65536)
            return True, False, f"HTTP {response.status}", 0.0
    except urllib.error.HTTPError as exc:
        exc.close()
        retry = exc.code == 429 or exc.code >= 500
        return False, retry, f"HTTP {exc.code}", _retry_after(exc) if retry else 0.0
    except urllib.error.URLError as exc:
        # A certificate that does not verify will not verify on the next try either.
        final = isinstance(exc.reason, ssl.SSLCertVerificationError)
        return False, not final, f"{type(exc.reason).__name__}: {exc.reason}", 0.0
    except (http.client.InvalidURL, ValueError) as exc:  # e.g. a space in the URL
        return False, False, f"invalid URL ({type(exc).__name__})", 0.0
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, bad answers
        return False, True, type(exc).__name__, 0.0


def _check(*, attempts: int, backoff_s: float, timeout_s: float) -> None:
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, but got {attempts=}")
    if backoff_s < 0:
        raise ValueError(f"backoff_s must be 0 or more, but got {backoff_s=}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, but got {timeout_s=}")


def _encode(payload: Mapping[str, Any]) -> bytes | None:
    try:
        return json.dumps(jsonable(payload), allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: a cycle
        _log.warning("webhook not sent: the payload is not JSON (%s)", exc)
        return None


def _usable(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url`` to name it in logs, or None (logged) if refused."""
    where = _where(url)
    if where is None:
        try:
            scheme = urlsplit(url).scheme
        except ValueError:
            scheme = ""
        shown = scheme if scheme.isalnum() else "?"  # never echo what may be a secret
        _log.warning("webhook not sent: use an http:// or https:// URL with a host (%s)", shown)
    return where


def _post(
    url: str,
    where: str,
    body: bytes,
    *,
    attempts: int,
    backoff_s: float,
    timeout_s: float,
    stop: threading.Event | None,
) -> bool:
    stop = stop or threading.Event()  # never set: the waits then run their full length
    outcome = "not tried"
    try:
        request = _request(url, body)
        for attempt in range(1, attempts + 1):
            delivered, retry, outcome, least_wait_s = _attempt(request, timeout_s)
            if delivered:
                return True
            if not retry:
                _log.warning("webhook to %s not delivered: %s (not retried)", where, outcome)
                return False
            if attempt == attempts:
                break
            wait_s = min(MAX_WAIT_S, max(backoff_s * 2 ** (attempt - 1), least_wait_s))
            _log.info(
                "webhook to %s: attempt %d of %d failed (%s); next in %g s",
                *(where, attempt, attempts, outcome, wait_s),
            )
            if stop.wait(wait_s):
                _log.warning("webhook to %s not delivered: stopped (%s)", where, outcome)
                return False
    except Exception as exc:  # a webhook must never take its caller down
        _log.warning("webhook to %s not delivered: %s", where, type(exc).__name__)
        return False
    _log.warning("webhook to %s not delivered after %d attempts: %s", where, attempts, outcome)
    return False


def send_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    attempts: int = 5,
    backoff_s: float = 1.0,
    timeout_s: float = 10.0,
    stop: threading.Event | None = None,
) -> bool:
    """POST ``payload`` as JSON to ``url``; True once a 2xx answer came back.

    Up to ``attempts`` tries, waiting ``backoff_s``, then twice as long each time (at most
    :data:`MAX_WAIT_S`, at least what a 429's ``Retry-After`` asks). The first attempt is
    always made; once ``stop`` is set no further one is. Non-finite floats in ``payload``
    are sent as ``null``. Raises only ValueError for nonsensical ``attempts``,
    ``backoff_s`` or ``timeout_s``; every delivery problem is False and a warning.
    """
    _check(attempts=attempts, backoff_s=backoff_s, timeout_s=timeout_s)
    where = _usable(url)
    body = None if where is None else _encode(payload)
    if where is None or body is None:
        return False
    return _post(
        url, where, body, attempts=attempts, backoff_s=backoff_s, timeout_s=timeout_s, stop=stop
    )


def notify_in_background(
    url: str,
    payload: Mapping[str, Any],
    *,
    attempts: int = 5,
    backoff_s: float = 1.0,
    timeout_s: float = 10.0,
    stop: threading.Event | None = None,
) -> threading.Thread:
    """:func:`send_webhook` on a started daemon thread; returns the thread (join it to wait).

    ``payload`` is serialized before this returns, so the caller may change it after.
    """
    _check(attempts=attempts, backoff_s=backoff_s, timeout_s=timeout_s)
    where = _usable(url)
    body = None if where is None else _encode(payload)

    def deliver() -> None:
        if where is not None and body is not None:
            _post(
                url,
                where,
                body,
                attempts=attempts,
                backoff_s=backoff_s,
                timeout_s=timeout_s,
                stop=stop,
            )

    thread = threading.Thread(target=deliver, name="regsweep-webhook", daemon=True)
    thread.start()
    return thread
