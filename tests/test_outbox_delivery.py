"""Nothing lost: a sweep's webhook event is written with its end, and delivered at least once
by whoever is alive — a worker killed with its event undelivered leaves it to the next
worker or the service, and a receiver that was down gets it once it is up, once per key."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from regcore.notify.courier import Courier
from regcore.notify.targets import WebhookTargets
from regcore.store import finish_sweep, list_outbox_events
from tests.product import Product
from tests.waiting import free_port, wait_until
from tests.worker.cluster import FAST, Cluster

LOOPBACK = "127.0.0.1"


@dataclass
class Post:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    """A webhook endpoint on ``port`` (bound by :meth:`start`, so it can be down first):
    answers the statuses in ``answers`` in turn, then 200, and keeps every POST."""

    port: int = field(default_factory=free_port)
    answers: list[int] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/hook/PATHSECRET?token=QUERYSECRET"

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.posts.append(Post(dict(self.headers.items()), body))
                self.send_response(outer.answers.pop(0) if outer.answers else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def keys(self) -> Counter[str]:
        """How many POSTs each idempotency key got (checking header and body agree)."""
        for post in self.posts:
            assert post.headers["Idempotency-Key"] == post.body["idempotency_key"]
        return Counter(post.body["idempotency_key"] for post in self.posts)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(
        f"sqlite:///{tmp_path / 'regsweep.db'}", tmp_path, env={"REGSWEEP_WEBHOOK_ALLOW": LOOPBACK}
    )
    yield c
    c.stop()


def hooked(url: str) -> dict[str, Any]:
    return {**FAST, "notify": {"webhook_url": url}}


# -- the courier in this process --------------------------------------------------------------


def courier_for(cluster: Cluster, **kwargs: Any) -> Courier:
    options: dict[str, Any] = {"targets": WebhookTargets([LOOPBACK]), "every_s": 0.1, **kwargs}
    return Courier(database=lambda: (cluster.engine, cluster.storage), **options)


def test_two_couriers_deliver_each_event_once_with_its_key(
    cluster: Cluster, receiver: Receiver
) -> None:
    receiver.start()
    ids = [cluster.submit(f"s{i}", 2, base=hooked(receiver.url)) for i in range(6)]
    for sweep_id in ids:
        finish_sweep(cluster.engine, sweep_id, "completed")
    couriers = [courier_for(cluster), courier_for(cluster)]
    for courier in couriers:
        courier.start()
    try:
        wait_until(lambda: len(receiver.posts) >= 6, 30, "six webhooks")
    finally:
        for courier in couriers:
            courier.close()
    assert courier_for(cluster).deliver_due() == 0  # nothing is left to send

    assert sorted(receiver.keys().values()) == [1] * 6
    assert sorted(p.body["sweep_id"] for p in receiver.posts) == sorted(ids)
    assert all(p.body["trials"]["WAITING"] == 1 for p in receiver.posts)  # the baseline
    assert all(e.delivered_at is not None for e in list_outbox_events(cluster.engine))


def test_a_failed_attempt_is_retried_with_the_same_body(
    cluster: Cluster, receiver: Receiver
) -> None:
    receiver.answers = [503, 429]
    receiver.start()
    finish_sweep(cluster.engine, cluster.submit("flaky", 2, base=hooked(receiver.url)), "failed")
    courier = courier_for(cluster, backoff_s=0.05)
    courier.start()
    try:
        wait_until(lambda: len(receiver.posts) == 3, 30, "two failures and a delivery")
    finally:
        courier.close()

    assert receiver.posts[0].body == receiver.posts[1].body == receiver.posts[2].body
    assert receiver.keys().most_common() == [(receiver.posts[0].body["idempotency_key"], 3)]
    [event] = list_outbox_events(cluster.engine)
    assert event.attempts == 3
    assert event.delivered_at is not None
    assert event.last_error == "HTTP 429"


@pytest.mark.parametrize(
    ("answers", "allow", "posts", "error"),
    [
        ([404], [LOOPBACK], 1, "HTTP 404"),  # a client error: not retried
        ([], [], 0, "refused: webhook host 127.0.0.1 is loopback"),  # not allowed
        ([503], [LOOPBACK], 1, "HTTP 503"),  # retryable, but older than give_up_after_s
    ],
)
def test_a_final_failure_is_logged_without_the_secret_and_not_retried(
    cluster: Cluster,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    answers: list[int],
    allow: list[str],
    posts: int,
    error: str,
) -> None:
    receiver.answers = answers
    receiver.start()
    finish_sweep(cluster.engine, cluster.submit("final", 2, base=hooked(receiver.url)), "failed")
    courier = courier_for(cluster, targets=WebhookTargets(allow), give_up_after_s=0)
    with caplog.at_level(logging.INFO, logger="regcore.notify"):
        assert courier.deliver_due() == 1
        assert courier.deliver_due() == 0

    assert len(receiver.posts) == posts
    [event] = list_outbox_events(cluster.engine)
    assert (event.delivered_at, event.next_attempt_at) == (None, None)
    assert event.last_error is not None
    assert event.last_error.startswith(error)
    assert "not delivered" in caplog.text
    assert "SECRET" not in caplog.text
    assert f"http://{LOOPBACK}:{receiver.port}" in caplog.text
    if not allow:
        assert "REGSWEEP_WEBHOOK_ALLOW" in caplog.text


def test_an_event_claimed_many_times_still_gets_a_bounded_wait(
    cluster: Cluster, receiver: Receiver
) -> None:
    receiver.answers = [503]
    receiver.start()
    finish_sweep(cluster.engine, cluster.submit("crashy", 2, base=hooked(receiver.url)), "failed")
    with cluster.engine.begin() as connection:  # as if 2000 deliverers had died holding it
        connection.execute(sa.text("UPDATE outbox SET attempts = 2000"))
    assert courier_for(cluster, max_wait_s=30).deliver_due() == 1

    [event] = list_outbox_events(cluster.engine)
    assert (event.attempts, event.last_error) == (2001, "HTTP 503")
    assert event.next_attempt_at is not None
    assert event.next_attempt_at <= datetime.now(UTC) + timedelta(seconds=31)


# -- real processes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "deliverer"),
    [("sqlite", "worker"), ("postgresql", "worker"), ("sqlite", "service")],
)
def test_a_killed_workers_events_reach_the_receiver_once_each_when_it_is_up(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    receiver: Receiver,
    engine: str,
    deliverer: str,
) -> None:
    if engine == "sqlite":
        url = f"sqlite:///{tmp_path / 'regsweep.db'}"
    else:
        url = request.getfixturevalue("postgres_databases")()
    cluster = Cluster(url, tmp_path, env={"REGSWEEP_WEBHOOK_ALLOW": LOOPBACK})
    product = Product(url, tmp_path)
    product.env["REGSWEEP_WEBHOOK_ALLOW"] = LOOPBACK
    try:
        # The receiver is down (its port closed): the worker ends both sweeps, which writes
        # their events, and fails to deliver them.
        ids = [cluster.submit(f"unheard-{i}", 2, base=hooked(receiver.url)) for i in range(2)]
        cluster.start_workers(1)

        def failed_once() -> bool:
            events = list_outbox_events(cluster.engine)
            return len(events) == 2 and all(e.last_error is not None for e in events)

        wait_until(failed_once, 120, "the sweeps' ends and failed deliveries")
        first = cluster.workers[0]
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        events = list_outbox_events(cluster.engine)
        assert [e.sweep_id for e in events] == ids
        assert all(e.delivered_at is None for e in events)
        assert all(e.next_attempt_at is not None for e in events)  # still due, to someone
        assert [cluster.status(i) for i in ids] == ["completed", "completed"]
        assert receiver.posts == []

        receiver.start()
        if deliverer == "worker":
            cluster.start_workers(1)
        else:
            product.start_service()

        def delivered_and_recorded() -> bool:
            return all(e.delivered_at is not None for e in list_outbox_events(cluster.engine))

        # Once recorded as delivered, no deliverer takes an event again: what the receiver
        # has got by then is all it ever gets.
        wait_until(delivered_and_recorded, 120, "the events, delivered and recorded")
        delivered = list_outbox_events(cluster.engine)
    finally:
        product.close()
        cluster.stop()

    assert receiver.keys() == Counter({e.key: 1 for e in events})
    by_sweep = {p.body["sweep_id"]: p.body for p in receiver.posts}
    for sweep_id in ids:
        body = by_sweep[sweep_id]
        assert (body["event"], body["status"]) == ("sweep.finished", "completed")
        assert body["trials"]["COMPLETE"] == 2
    assert all(e.attempts >= 2 for e in delivered)  # failed with the first worker, then sent
