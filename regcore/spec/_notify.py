"""The spec's ``notify`` section, and what readers may see of its webhook URL: the one part
of a spec that may hold a secret."""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import WithJsonSchema, field_validator

from regcore.spec._base import SpecModel

# What a webhook URL may be, one rule for the JSON schema and the check: http or https, an
# optional user, a host name, IPv4 or [IPv6] address, an optional port (0-65535), then a
# path, query or fragment without spaces or control characters. ASCII classes only, so that
# JSON Schema's regular expressions and Python's agree.
_PORT = "6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}"
WEBHOOK_URL = (
    r"^https?://([^\x00-\x20\x7f/?#@]*@)?([^\x00-\x20\x7f/?#@:\[\]]+|\[[0-9A-Fa-f:.]+\])"
    rf"(:({_PORT}))?([/?#][^\x00-\x20\x7f]*)?$"
)


class NotifySpec(SpecModel):
    """Where to report a finished sweep: ``{webhook_url: https://hooks.example.com/x}``.

    The URL's path and query are often its secret (Slack's are), so readers are shown it
    redacted (:func:`redact_secrets`); only the sweep's row, which workers read to deliver,
    keeps it whole.
    """

    webhook_url: Annotated[
        str | None,
        WithJsonSchema({"anyOf": [{"type": "string", "pattern": WEBHOOK_URL}, {"type": "null"}]}),
    ] = None

    @field_validator("webhook_url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is None:
            return None
        # re.search, as JSON Schema validators in Python read a pattern: its "$" also
        # matches before a last newline, which is then dropped.
        if not re.search(WEBHOOK_URL, url):
            shown = reprlib.repr(url)
            raise ValueError(
                "use an http:// or https:// URL with a host (and no spaces), such as "
                f"https://hooks.example.com/regsweep, but got {shown}"
            )
        return url.removesuffix("\n")


REDACTED = "…"


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…``: what a reader may see of a webhook URL (its user, path,
    query and fragment dropped). Still a valid ``webhook_url``, so a redacted spec parses."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return REDACTED
    if not parts.hostname:
        return REDACTED
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    where = host if port is None else f"{host}:{port}"
    return f"{parts.scheme}://{where}/{REDACTED}"


def redact_secrets(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a spec's (or a batch's) JSON data as readers may see it: the webhook URL
    redacted, in ``notify`` and in a batch's ``template`` and ``sweeps``."""
    shown = dict(spec)
    notify = shown.get("notify")
    if isinstance(notify, Mapping) and isinstance(notify.get("webhook_url"), str):
        shown["notify"] = {**notify, "webhook_url": redact_url(notify["webhook_url"])}
    if isinstance(shown.get("template"), Mapping):
        shown["template"] = redact_secrets(shown["template"])
    if isinstance(shown.get("sweeps"), list):
        shown["sweeps"] = [
            redact_secrets(s) if isinstance(s, Mapping) else s for s in shown["sweeps"]
        ]
    return shown
