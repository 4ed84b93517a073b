"""Webhooks against a real HTTP server on localhost (allowed by the allow-list: loopback is
refused by default)."""

from __future__ import annotations

import logging
import math
import threading
from base64 import b64encode
from typing import Any, TypedDict

import optuna
import pytest

from regcore.notify.targets import WebhookTargets
from regcore.notify.webhook import USER_AGENT, post_webhook, send_webhook
from tests.waiting import free_port, wait_until
from tests.webhooks import Hook

optuna.logging.set_verbosity(optuna.logging.WARNING)


class Fast(TypedDict):
    backoff_s: float
    timeout_s: float
    targets: WebhookTargets


LOOPBACK = WebhookTargets(["127.0.0.1"])
FAST = Fast(backoff_s=0.01, timeout_s=5.0, targets=LOOPBACK)


def in_thread(target: Any) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(target()), daemon=True)
    thread.start()
    return thread, result


def test_delivers_json_on_the_first_try(hook: Hook) -> None:
    payload = {"event": "sweep.finished", "best": {"l1": 1e-4, "method": "proximal"}}
    assert send_webhook(hook.url, payload, **FAST) is True
    [request] = hook.received
    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT
    assert "regsweep" in USER_AGENT
    assert request.json() == payload


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_retries_after_server_errors_then_delivers(hook: Hook, status: int) -> None:
    hook.answers = [status, status]
    assert send_webhook(hook.url, {"n": 1}, attempts=5, **FAST) is True
    assert len(hook.received) == 3
    assert all(r.json() == {"n": 1} for r in hook.received)


def test_gives_up_after_the_last_attempt(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    hook.answers = [500] * 10
    with caplog.at_level(logging.WARNING, logger="regcore.notify.webhook"):
        assert send_webhook(hook.url, {"n": 1}, attempts=3, **FAST) is False
    assert len(hook.received) == 3
    assert "after 3 attempts: HTTP 500" in caplog.text


@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_client_error_is_not_retried(
    hook: Hook, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    hook.answers = [status]
    with caplog.at_level(logging.WARNING, logger="regcore.notify.webhook"):
        assert send_webhook(hook.url, {"n": 1}, attempts=5, **FAST) is False
    assert len(hook.received) == 1
    assert f"HTTP {status} (not retried)" in caplog.text


def test_redirect_is_not_followed_as_a_get_without_the_payload(hook: Hook) -> None:
    hook.answers = [302]
    hook.headers = {"Location": "/elsewhere"}
    assert send_webhook(hook.url, {"n": 1}, attempts=5, **FAST) is False
    assert [(r.method, r.path) for r in hook.received] == [("POST", "/hook")]


def test_retry_after_of_a_429_is_waited_for(hook: Hook) -> None:
    hook.answers = [429]
    hook.headers = {"Retry-After": "30"}
    stop = threading.Event()
    thread, result = in_thread(lambda: send_webhook(hook.url, {}, stop=stop, **FAST))
    wait_until(lambda: len(hook.received) == 1, 10, "the first attempt")
    # The backoff alone (0.01 s) would have retried long ago; Retry-After holds it.
    assert not stop.wait(1.0)
    assert len(hook.received) == 1
    stop.set()
    thread.join(timeout=10)
    assert result == [False]


def test_unreachable_port_returns_false_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with caplog.at_level(logging.INFO, logger="regcore.notify.webhook"):
        thread, result = in_thread(lambda: send_webhook(url, {"n": 1}, attempts=3, **FAST))
        thread.join(timeout=30)
    assert not thread.is_alive(), "send_webhook hung on a closed port"
    assert result == [False]
    assert "ConnectionRefusedError" in caplog.text
    assert "after 3 attempts" in caplog.text


def test_stop_event_cuts_the_backoff_short(hook: Hook) -> None:
    hook.answers = [500] * 10
    stop = threading.Event()
    # Without the stop event this would wait 60 s before its second attempt.
    thread, result = in_thread(
        lambda: send_webhook(hook.url, {}, attempts=5, backoff_s=60, stop=stop, targets=LOOPBACK)
    )
    wait_until(lambda: len(hook.received) == 1, 10, "the first attempt")
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the backoff did not end when stop was set"
    assert result == [False]
    assert len(hook.received) == 1


def test_stop_already_set_still_makes_one_attempt_and_no_retry(hook: Hook) -> None:
    stop = threading.Event()
    stop.set()
    assert send_webhook(hook.url, {"n": 1}, stop=stop, **FAST) is True
    hook.answers = [500] * 10
    assert send_webhook(hook.url, {"n": 2}, stop=stop, **FAST) is False
    assert [r.json() for r in hook.received] == [{"n": 1}, {"n": 2}]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "mailto:someone@example.com",
        "https://",
        "http://[::1/hook",
        "http://example.com:port/hook",
        "not a url",
        "",
    ],
)
def test_non_http_url_is_refused(url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="regcore.notify.webhook"):
        assert send_webhook(url, {"n": 1}, **FAST) is False
    assert "use an http:// or https:// URL" in caplog.text


def test_log_names_the_host_but_never_the_secret(
    hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    hook.answers = [500] * 10
    secret_url = f"{hook.url}/PATHSECRET?token=QUERYSECRET"
    closed = f"http://127.0.0.1:{free_port()}/PATHSECRET?token=QUERYSECRET"
    with caplog.at_level(logging.DEBUG, logger="regcore.notify.webhook"):
        assert send_webhook(secret_url, {}, attempts=2, **FAST) is False
        assert send_webhook(closed, {}, attempts=2, **FAST) is False
        assert send_webhook("ftp://h/PATHSECRET?token=QUERYSECRET", {}, **FAST) is False
        assert send_webhook("QUERYSECRET", {}, **FAST) is False
    assert len(caplog.records) >= 5
    assert "PATHSECRET" not in caplog.text
    assert "QUERYSECRET" not in caplog.text
    assert hook.url.removesuffix("/hook") in caplog.text  # scheme://host:port


def test_credentials_in_the_url_are_sent_as_basic_auth(
    hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    url = hook.url.replace("http://", "http://alice:PASS%40WORD@")
    with caplog.at_level(logging.DEBUG, logger="regcore.notify.webhook"):
        assert send_webhook(url, {"n": 1}, **FAST) is True
        hook.answers = [500] * 10
        assert send_webhook(url, {"n": 1}, attempts=2, **FAST) is False
    request = hook.received[0]
    assert request.path == "/hook"
    assert request.headers["Authorization"] == "Basic " + b64encode(b"alice:PASS@WORD").decode()
    assert "PASS" not in caplog.text
    assert "alice" not in caplog.text


def test_url_that_cannot_be_requested_is_not_retried(
    hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="regcore.notify.webhook"):
        assert send_webhook(hook.url + "/a space", {}, attempts=5, **FAST) is False
    assert hook.received == []
    assert "invalid URL" in caplog.text
    assert "(not retried)" in caplog.text


def test_non_finite_floats_are_sent_as_null(hook: Hook) -> None:
    assert send_webhook(hook.url, {"loss": math.inf, "x": [math.nan, 1.0]}, **FAST) is True
    assert hook.received[0].json() == {"loss": None, "x": [None, 1.0]}


def test_payload_that_is_not_json_is_not_sent(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="regcore.notify.webhook"):
        assert send_webhook(hook.url, {"x": object()}, **FAST) is False
    assert hook.received == []
    assert "not JSON" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempts": 0}, "attempts=0"),
        ({"backoff_s": -1.0}, "backoff_s=-1.0"),
        ({"timeout_s": 0.0}, "timeout_s=0.0"),
    ],
)
def test_nonsensical_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        send_webhook("http://127.0.0.1/", {}, **kwargs)


def test_the_idempotency_key_goes_in_a_header(hook: Hook) -> None:
    assert send_webhook(hook.url, {"idempotency_key": "k1"}, key="k1", **FAST) is True
    hook.answers = [503]
    assert send_webhook(hook.url, {"n": 2}, key="k2", **FAST) is True
    assert [r.headers["Idempotency-Key"] for r in hook.received] == ["k1", "k2", "k2"]
    assert send_webhook(hook.url, {}, **FAST) is True
    assert "Idempotency-Key" not in hook.received[-1].headers


def test_loopback_is_refused_by_default_naming_the_setting(
    hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{hook.url}/PATHSECRET"
    with caplog.at_level(logging.WARNING, logger="regcore.notify.webhook"):
        assert send_webhook(url, {"n": 1}, backoff_s=0.01) is False
    assert hook.received == []  # never contacted
    assert "loopback" in caplog.text
    assert "REGSWEEP_WEBHOOK_ALLOW" in caplog.text
    assert "(not retried)" in caplog.text
    assert "PATHSECRET" not in caplog.text


@pytest.mark.parametrize(
    ("status", "retry"), [(200, False), (204, False), (503, True), (429, True), (404, False)]
)
def test_one_attempt_says_whether_another_may_succeed(hook: Hook, status: int, retry: bool) -> None:
    hook.answers = [status]
    hook.headers = {"Retry-After": "7"}
    result = post_webhook(hook.url, b'{"n": 1}', targets=LOOPBACK, key="k")
    assert result.delivered is (200 <= status < 300)
    assert result.retry is retry
    assert result.outcome == f"HTTP {status}"
    assert result.wait_s == (7.0 if retry else 0.0)
    assert hook.received[0].json() == {"n": 1}


@pytest.mark.parametrize(
    ("url", "retry", "outcome"),
    [
        ("http://no-such-host.invalid/hook", True, "DNS lookup failed"),  # may resolve later
        (f"http://127.0.0.1:{free_port()}/hook", True, "ConnectionRefusedError"),  # may be up later
        ("ftp://127.0.0.1/hook", False, "invalid URL"),
        ("http://127.0.0.1:port/hook", False, "invalid URL"),
        ("http://169.254.169.254/latest/meta-data", False, "refused: webhook host"),
    ],
)
def test_one_attempt_without_an_answer_says_whether_another_may_succeed(
    url: str, retry: bool, outcome: str
) -> None:
    result = post_webhook(url, b"{}", targets=LOOPBACK, key="k", timeout_s=5.0)
    assert (result.delivered, result.retry) == (False, retry)
    assert result.outcome.startswith(outcome), result.outcome
    assert "meta-data" not in result.outcome  # the host at most, never the path
    assert "/hook" not in result.outcome
