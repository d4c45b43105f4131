"""A client process of the chaos harness: loops of HTTP requests, one JSON line per answer.

    python bench/chaos_client.py PLAN.json OUT.jsonl

PLAN is {"base": URL, "token": JWT, "timeout_s": S, "loops": [{"kind", "method", "path",
"bodies"?, "threads", "interval_s"}]}. Each loop's threads send their request again and
again (a body taken round-robin from `bodies`), waiting `interval_s` between answers, until
SIGTERM; a request in flight is allowed to finish. Each line: {"kind", "start" (epoch s),
"seconds", "status" (0 = no answer), "error"?, "job"?}.
"""

import itertools
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

stop = threading.Event()
write_lock = threading.Lock()


def run_loop(
    client: httpx.Client, loop: dict[str, Any], bodies: "itertools.cycle[Any]", out: Any
) -> None:
    while not stop.is_set():
        body = next(bodies)
        start = time.time()
        record: dict[str, Any] = {"kind": loop["kind"], "start": start}
        try:
            response = client.request(loop["method"], loop["path"], json=body)
            record["status"] = response.status_code
            if response.status_code >= 400:
                record["error"] = response.text[:200]
            elif loop["kind"].startswith("enqueue"):
                record["job"] = response.json().get("jobId")
        except httpx.HTTPError as exc:
            record["status"] = 0
            record["error"] = f"{type(exc).__name__}: {exc}"[:200]
        record["seconds"] = round(time.time() - start, 4)
        with write_lock:
            out.write(json.dumps(record) + "\n")
            out.flush()
        stop.wait(loop["interval_s"])


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    headers = {"Authorization": f"Bearer {plan['token']}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with (
        Path(sys.argv[2]).open("a") as out,
        httpx.Client(
            base_url=plan["base"], headers=headers, timeout=plan["timeout_s"], limits=limits
        ) as client,
    ):
        threads = []
        for loop in plan["loops"]:
            bodies = itertools.cycle(loop.get("bodies") or [None])
            for _ in range(loop["threads"]):
                thread = threading.Thread(
                    target=run_loop, args=(client, loop, bodies, out), daemon=True
                )
                thread.start()
                threads.append(thread)
        while not stop.is_set():
            stop.wait(0.2)
        for thread in threads:
            thread.join(plan["timeout_s"] + 1)


if __name__ == "__main__":
    main()
