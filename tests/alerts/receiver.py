"""A webhook receiver for tests, run as its own process: verifies every request's signature
with the `standardwebhooks` library and records each one as a JSON line.

    python receiver.py SECRET RECORD_FILE PORT_FILE MODE_FILE [PORT]

It listens on 127.0.0.1 on PORT (default: a free one), written to PORT_FILE once listening.
MODE_FILE says how to answer, re-read per request: `ok` (200), `fail` (500), `hang` (never
answers; the request is recorded as held), `sleep N` (answers 200 after N seconds),
`trickle` (sends its answer, a 200, one byte every 0.5 s: each read gets something within any
per-read timeout, the whole takes half a minute) and `flood` (answers 500 with an endless body,
as fast as it is read).
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET, RECORD, PORT_FILE, MODE_FILE = sys.argv[1:5]
LOCK = threading.Lock()


def record(entry: dict[str, object]) -> None:
    with LOCK, Path(RECORD).open("a") as out:
        out.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = Webhook(SECRET).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload, verified = json.loads(body or b"null"), False
        mode = Path(MODE_FILE).read_text().strip() if Path(MODE_FILE).exists() else "ok"
        entry = {"id": headers.get("webhook-id"), "verified": verified, "payload": payload}
        if mode == "hang":
            record({**entry, "status": None})
            time.sleep(3600)
            return
        if mode in ("trickle", "flood"):
            record({**entry, "status": mode})
            self.answer_forever(mode)
            return
        if mode.startswith("sleep"):
            time.sleep(float(mode.split()[1]))
        status = 500 if mode == "fail" else 200
        if not verified:
            status = 401
        # Recorded before answering: a sender that saw the answer finds the record.
        record({**entry, "status": status})
        self.send_response(status)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def answer_forever(self, mode: str) -> None:
        try:
            if mode == "trickle":
                for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.5)
            else:
                self.send_response(500)
                self.send_header("content-length", str(10**12))
                self.end_headers()
                block = b"x" * 65536
                while True:
                    self.wfile.write(block)
        except OSError:  # the sender hung up
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


port = int(sys.argv[5]) if len(sys.argv) > 5 else 0
ThreadingHTTPServer.allow_reuse_address = True
ThreadingHTTPServer.request_queue_size = 1024  # a burst of connections is not refused
server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True
Path(PORT_FILE + ".tmp").write_text(str(server.server_address[1]))
Path(PORT_FILE + ".tmp").rename(PORT_FILE)
server.serve_forever()
