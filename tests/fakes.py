"""A local fake provider HTTP server (SendGrid v3 or Twilio shaped) and a recording channel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from engine.channels.base import Channel, Outcome, Outgoing

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Reply:
    status: int = 202
    body: Any = ""
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to wait before answering (past a client's timeout)


@dataclass
class FakeServer:
    """Records every request; answers from `script` (in order), then with `default`."""

    default: Reply
    script: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    keep: bool = True  # False: only count requests and recipients (benchmarks)
    counts: dict[str, int] = field(default_factory=lambda: {"requests": 0, "recipients": 0})

    def bodies(self) -> list[Any]:
        return [r["body"] for r in self.requests]


def answer(handler: BaseHTTPRequestHandler, status: int, payload: Any,
           headers: dict[str, str] | None = None) -> None:
    """Answer with a JSON (or text) body; a client that went away is no error."""
    data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
    try:
        handler.send_response(status)
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def _handler(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            ctype = self.headers.get("Content-Type", "")
            body = json.loads(raw) if "json" in ctype else {
                k: v[0] for k, v in parse_qs(raw).items()}
            fake.counts["requests"] += 1
            fake.counts["recipients"] += len(body.get("personalizations", [None]))
            if fake.keep:
                fake.requests.append({"path": self.path, "headers": dict(self.headers),
                                      "body": body})
            reply = fake.script.pop(0) if fake.script else fake.default
            if reply.hang:
                time.sleep(reply.hang)
            answer(self, reply.status, reply.body, reply.headers)

        def do_GET(self) -> None:  # the counts, for a server in another process
            data = json.dumps(fake.counts).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def fake_server(default: Reply, keep: bool = True) -> Iterator[FakeServer]:
    fake = FakeServer(default, keep=keep)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class RemoteFake:
    url: str

    def counts(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/counts", timeout=10) as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]


@contextmanager
def fake_server_process(default: Reply) -> Iterator[RemoteFake]:
    """A counting fake server in a process of its own, as a real provider runs on another
    machine: for benchmarks, where its work must not share the measured interpreter."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes", json.dumps(asdict(default))],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield RemoteFake(f"http://127.0.0.1:{int(process.stdout.readline())}")
    finally:
        process.terminate()
        process.wait()


def _serve(default: Reply) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(FakeServer(default, keep=False)))
    print(server.server_address[1], flush=True)
    server.serve_forever()


def twilio_created(n: int) -> Reply:
    return Reply(201, {"sid": f"SM{n:032d}", "status": "queued", "num_segments": "1"})


class RecordingChannel(Channel):
    """An in-memory provider implementing the real interface: it keeps what it was given."""

    max_batch = 100

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def send(self, batch: Sequence[Outgoing]) -> Generator[list[Outcome], None, None]:
        self.sent.extend(batch)
        yield [Outcome(m.message_id, "sent", provider_id=f"rec-{m.message_id}") for m in batch]


if __name__ == "__main__":
    _serve(Reply(**json.loads(sys.argv[1])))
