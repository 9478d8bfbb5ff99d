"""A provider that keeps the ledger a user would check: what it accepted, by recipient.

One local HTTP server speaks both SendGrid's v3 mail/send and Twilio's Messages API. Each
request waits a while (some longer than a dispatcher's lease), then is refused (429 or 500),
answered with garbage (a bad status line or a truncated body) or accepted; only an accepted
request counts, each of its recipients once. Each accepted request keeps when it arrived and
when it was answered, so a test can tell the requests that were open when it killed a
dispatcher (the one case that may be sent twice)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tests.fakes import answer


@dataclass(frozen=True)
class Accepted:
    """One accepted request: the recipients it carried (SendGrid: our message ids; Twilio:
    the phone numbers) and its open interval on the monotonic clock."""

    recipients: tuple[str, ...]
    arrived: float
    answered: float


@dataclass
class Faults:
    refuse: float = 0.25  # share of requests refused or garbled (not accepted)
    slow: float = 0.05  # share of requests that take `slow_seconds`
    slow_seconds: float = 3.0
    delay: tuple[float, float] = (0.02, 0.15)  # the others' time to answer
    seed: int = 7


@dataclass
class AcceptingProvider:
    faults: Faults
    url: str = ""
    accepted: list[Accepted] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.random = random.Random(self.faults.seed)

    def times(self) -> Counter[str]:
        """How many times each recipient was accepted."""
        with self.lock:
            return Counter(r for a in self.accepted for r in a.recipients)

    def open_at(self, moments: list[float], slack: float) -> set[str]:
        """Recipients of accepted requests open at one of `moments`: arrived before it and
        answered after it, or so shortly before (`slack`) that the answer was still being
        recorded."""
        with self.lock:
            return {r for a in self.accepted for t in moments
                    if a.arrived <= t <= a.answered + slack for r in a.recipients}

    def _fate(self) -> tuple[str, float]:
        with self.lock:
            roll, pace = self.random.random(), self.random.random()
            wait = (self.faults.slow_seconds if pace < self.faults.slow
                    else self.random.uniform(*self.faults.delay))
            if roll < self.faults.refuse:
                return self.random.choice(["429", "500", "bad_status", "truncated"]), wait
            return "accept", wait


def _handler(provider: AcceptingProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:
            arrived = time.monotonic()
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            twilio = "/Messages.json" in self.path
            if twilio:
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                recipients: tuple[str, ...] = (form["To"],)
            else:
                body = json.loads(raw)
                recipients = tuple(p["custom_args"]["nudgeflow_message_id"]
                                   for p in body["personalizations"])
            fate, wait = provider._fate()
            time.sleep(wait)
            if fate == "accept":
                with provider.lock:
                    provider.accepted.append(Accepted(recipients, arrived, time.monotonic()))
                if twilio:
                    answer(self, 201, {"sid": f"SM{abs(hash((recipients, arrived))):032d}",
                                       "status": "queued", "num_segments": "1"})
                else:
                    answer(self, 202, "", {"X-Message-Id": f"sg-{int(arrived * 1e6)}"})
                return
            with provider.lock:
                provider.refused[fate] += 1
            try:
                self._garble(fate, twilio)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _garble(self, fate: str, twilio: bool) -> None:
            if fate == "bad_status":
                self.wfile.write(b"HTTP/1.1 OK-ish\r\n\r\n")
                self.close_connection = True
            elif fate == "truncated":
                self.send_response(500 if twilio else 202)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b'{"err')
                self.close_connection = True
            else:
                answer(self, int(fate), {"errors": [{"message": f"fault {fate}"}],
                                         "code": 20429, "message": f"fault {fate}",
                                         "status": int(fate)})

    return Handler


@contextmanager
def accepting_provider(faults: Faults) -> Iterator[AcceptingProvider]:
    provider = AcceptingProvider(faults)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    server.daemon_threads = True
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
