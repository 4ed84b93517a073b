"""A webhook URL as readers see it: scheme, host and port; never its user, path or query."""

from __future__ import annotations

import pytest

from regcore.spec import parse_spec, redact_secrets
from regcore.spec._notify import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com/…"),
        ("http://user:pw@example.org:8080/x?token=abc#f", "http://example.org:8080/…"),
        ("https://[2001:db8::1]/hook?k=v", "https://[2001:db8::1]/…"),
        ("https://example.org", "https://example.org/…"),
        ("https://example.org:99999/x", "…"),
    ],
)
def test_redact_url_keeps_only_where_it_goes(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_redacted_spec_still_parses_and_the_original_is_untouched() -> None:
    hook = "https://hooks.example.com/secret-path?token=t"
    data = {
        "name": "s",
        "workload": {"name": "diabetes_linear"},
        "search_space": {"l1": 0, "l2": 0},
        "notify": {"webhook_url": hook},
    }

    shown = redact_secrets(data)

    assert shown["notify"]["webhook_url"] == "https://hooks.example.com/…"
    assert data["notify"]["webhook_url"] == hook
    assert parse_spec(shown).notify.webhook_url == "https://hooks.example.com/…"


def test_redact_secrets_reaches_a_batchs_template_and_sweeps() -> None:
    hook = {"webhook_url": "https://h.example/s3cret"}
    batch = {"notify": hook, "template": {"notify": hook}, "sweeps": [{"notify": hook}, 3]}

    text = repr(redact_secrets(batch))

    assert "s3cret" not in text
    assert text.count("https://h.example/…") == 3
