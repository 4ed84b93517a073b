"""Where webhooks may go: loopback, link-local, private and other non-global addresses are
refused unless REGSWEEP_WEBHOOK_ALLOW lists them, after DNS, and the POST goes to the
address that was checked."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from regcore.notify.targets import ALLOW_SETTING, TargetRefusedError, WebhookTargets
from regcore.notify.webhook import post_webhook
from regcore.settings import Settings
from tests.webhooks import Hook


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("[::1]", "loopback"),
        ("169.254.169.254", "link-local"),  # the cloud's metadata service
        ("[fe80::1]", "link-local"),
        ("[::ffff:169.254.169.254]", "link-local"),  # IPv4 hidden in IPv6
        ("[64:ff9b::a9fe:a9fe]", "link-local"),  # NAT64 of 169.254.169.254
        ("0.0.0.0", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("[fd00::1]", "private"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not globally routable"),  # shared address space (carrier NAT)
        ("192.0.2.1", "private"),  # documentation
        ("localhost", "loopback"),  # a name is judged by what it resolves to
    ],
)
def test_non_global_targets_are_refused_naming_the_setting(host: str, kind: str) -> None:
    with pytest.raises(TargetRefusedError) as refused:
        WebhookTargets().resolve(f"http://{host}:8080/hook/SECRET?token=QUERYSECRET")
    message = str(refused.value)
    assert kind in message
    assert ALLOW_SETTING in message
    assert "SECRET" not in message  # the host only, never the path or query


@pytest.mark.parametrize("url", ["https://93.184.215.14/hook", "http://[2606:4700::1111]:8443/x"])
def test_global_addresses_are_allowed(url: str) -> None:
    target = WebhookTargets().resolve(url)
    assert target.addresses == (target.host,)
    assert target.port in (443, 8443)


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        (["127.0.0.1"], "http://127.0.0.1:9/hook"),
        (["127.0.0.0/8"], "http://127.3.2.1:9/hook"),
        (["127.0.0.1"], "http://[::ffff:127.0.0.1]:9/hook"),
        (["::1"], "http://[::1]:9/hook"),
        (["10.0.0.0/8", "192.168.0.0/16"], "http://10.20.30.40/hook"),
        (["localhost"], "http://LocalHost:9/hook"),  # a name allowed as such
        ([".localdomain", "localhost"], "http://localhost/hook"),
        (["169.254.169.254/32"], "http://169.254.169.254/latest/meta-data"),
    ],
)
def test_the_allow_list_lets_its_hosts_and_networks_through(allow: list[str], url: str) -> None:
    assert WebhookTargets(allow).refusal(url) is None
    WebhookTargets(allow).resolve(url)


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        (["127.0.0.1"], "http://127.0.0.2/hook"),
        (["10.0.0.0/8"], "http://169.254.169.254/hook"),
        (["hooks.internal"], "http://localhost/hook"),
        ([".internal"], "http://localhost/hook"),
    ],
)
def test_the_allow_list_lets_nothing_else_through(allow: list[str], url: str) -> None:
    assert WebhookTargets(allow).refusal(url) is not None


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "http://hooks.internal", "*.internal", "a b"])
def test_a_bad_allow_entry_is_refused_naming_it(entry: str) -> None:
    with pytest.raises(ValueError, match=ALLOW_SETTING) as refused:
        WebhookTargets([entry])
    assert repr(entry) in str(refused.value)


def test_the_setting_is_a_comma_separated_list_checked_at_start() -> None:
    settings = Settings(webhook_allow=" 127.0.0.1, 10.0.0.0/8 ,hooks.internal,")
    assert settings.webhook_allow_list == ("127.0.0.1", "10.0.0.0/8", "hooks.internal")
    assert Settings().webhook_allow_list == ()
    with pytest.raises(ValidationError, match=ALLOW_SETTING):
        Settings(webhook_allow="10.0.0.0/8,300.1.1.1/8")


def test_a_host_that_does_not_resolve_now_passes_the_submit_check_only() -> None:
    url = "https://no-such-host.invalid/hook"
    assert WebhookTargets().refusal(url) is None  # the delivery checks again
    with pytest.raises(socket.gaierror):
        WebhookTargets().resolve(url)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    """Names under ``.test`` answer what the test puts in the dict (one answer per lookup,
    the last one repeated); every other lookup goes to the real resolver."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".test"):
            queue = answers[host]
            address = queue.pop(0) if len(queue) > 1 else queue[0]
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    lookups: list[str] = []
    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    yield answers
    assert all(h in answers for h in lookups)


def test_a_name_is_refused_for_what_it_resolves_to(dns: dict[str, list[str]]) -> None:
    dns["metadata.test"] = ["169.254.169.254"]
    with pytest.raises(TargetRefusedError, match=r"metadata\.test resolves to 169\.254\.169\.254"):
        WebhookTargets().resolve("http://metadata.test/latest")


def test_the_post_goes_to_the_address_checked_not_a_rebound_one(
    hook: Hook,
    dns: dict[str, list[str]],
) -> None:
    """DNS rebinding: the name answers a public-looking allowed address for the check and
    the cloud's metadata address after; the connection uses the first answer."""
    port = int(hook.url.rsplit(":", 1)[1].split("/")[0])
    dns["rebind.test"] = ["127.0.0.1", "169.254.169.254"]
    targets = WebhookTargets(["127.0.0.1"])

    result = post_webhook(f"http://rebind.test:{port}/hook", b"{}", targets=targets, key="k1")

    assert result.delivered, result.outcome
    [request] = hook.received
    assert request.headers["Host"] == f"rebind.test:{port}"  # the name, for virtual hosts
    assert request.headers["Idempotency-Key"] == "k1"
    assert dns["rebind.test"] == ["169.254.169.254"]  # asked once: no second lookup


def test_a_refused_target_is_final_and_never_contacted(hook: Hook) -> None:
    result = post_webhook(hook.url, b"{}", targets=WebhookTargets())
    assert (result.delivered, result.retry) == (False, False)
    assert result.outcome.startswith("refused: webhook host 127.0.0.1 is loopback")
    assert hook.received == []
