"""The deployment guide's checklist, walked over HTTP as an operator would: real `aoer serve`
and `aoer worker` processes on a fresh database.

Queue a tenant at high priority and see it pending; start the worker and see it log
`worker active` and `✅ Completed`; read the summary; see a new `metrics_events` row (and the
live stream's update); call the cron with its secret and see every tenant queued, then fresh.
"""

import asyncio
import json
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from aoer.api.auth import TokenService
from aoer.db.pool import Connection
from tests.acceptance.conftest import start_aoer
from tests.conftest import utc_today

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

JWT_SECRET = "checklist-secret-0123456789abcdef-0123456789"
CRON_SECRET = "checklist-cron-secret-0123456789abcdef"
WAIT_S = 60.0
DEALERS = ("Riverside Honda", "Summit Ford", "Bayview Toyota")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(what: str, probe: Callable[[], Any], log: Path | None = None) -> Any:
    """Poll `probe` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        result = probe()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}\n{tail(log)}")


def tail(log: Path | None) -> str:
    return log.read_text()[-3000:] if log else ""


def stop(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(30)


@pytest.fixture
async def serve(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    port = _free_port()
    log = tmp_path / "serve.log"
    process = start_aoer(
        db_url, log, "serve", "--port", str(port),
        AOER_JWT_SECRET=JWT_SECRET, CRON_SECRET=CRON_SECRET, AOER_HOME=str(tmp_path / "home"),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{base}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        await eventually("aoer serve to be ready", ready, log)
        yield base, log
    finally:
        assert stop(process) == 0, log.read_text()[-2000:]


async def events_count(conn: Connection) -> int:
    cur = await conn.execute("SELECT count(*) AS n FROM metrics_events")
    row = await cur.fetchone()
    assert row is not None
    return int(row["n"])  # type: ignore[call-overload]


async def test_the_deployment_checklist_over_http(
    serve: tuple[str, Path], db_url: str, conn: Connection, tmp_path: Path
) -> None:
    base, serve_log = serve
    admin = {"Authorization": f"Bearer {TokenService(JWT_SECRET).mint('admin')}"}
    async with httpx.AsyncClient(base_url=base, headers=admin, timeout=10) as api:
        # Register the dealerships and send 30 days of signals (no recompute yet).
        tenants = []
        for name in DEALERS:
            created = await api.post("/api/tenants", json={"name": name})
            assert created.status_code == 201, created.text
            tenants.append(created.json()["id"])
        rows = [
            {"dealerId": t, "date": str(utc_today() - timedelta(d)), "aeo": 55 + i * 10,
             "geo": 50, "ugc": 45}
            for i, t in enumerate(tenants)
            for d in range(30)
        ]  # fmt: skip
        sent = await api.post("/api/signals", json={"signals": rows, "enqueue": False})
        assert sent.json() == {"upserted": 90, "tenants": 3, "queued": 0}
        first = tenants[0]

        # Queue job → `[AOER] Queued recompute for tenant …`, and it shows as pending.
        queued = await api.post("/api/aoer/queue", json={"tenantId": first, "priority": "high"})
        assert queued.status_code == 202
        assert (queued.json()["priority"], queued.json()["status"]) == ("high", "queued")
        status = await api.get("/api/aoer/queue", params={"tenantId": first})
        assert status.json()["queueStatus"] == {
            "pending": 1, "processing": 0, "completed": 0, "failed": 0,
        }  # fmt: skip
        assert f"[AOER] Queued recompute for tenant {first} (priority: high)" in (
            serve_log.read_text()
        )
        assert (await api.get("/api/aoer/summary", params={"tenantId": first})).status_code == 404
        events_before = await events_count(conn)

        # The dashboard's live tile: subscribe before the worker starts.
        async with api.stream("GET", "/api/aoer/stream", params={"tenantId": first}) as stream:
            lines = stream.aiter_lines()

            # Worker starts → "AOER Orchestrator worker active", then "✅ Completed …".
            worker_log = tmp_path / "worker.log"
            worker = start_aoer(db_url, worker_log, "worker", AOER_HOME=str(tmp_path / "w"))
            try:
                await eventually(
                    "the worker to start",
                    lambda: "[AOER] AOER Orchestrator worker active" in worker_log.read_text(),
                    worker_log,
                )
                await eventually(
                    "the worker to complete the job",
                    lambda: (
                        f"[AOER] ✅ Completed recompute for tenant {first}"
                        in worker_log.read_text()
                    ),
                    worker_log,
                )
                summary_event = await asyncio.wait_for(next_summary_event(lines), WAIT_S)

                # The summary is there, with grade and risk level, and a new event row.
                summary = (await api.get("/api/aoer/summary", params={"tenantId": first})).json()
                assert summary == summary_event, "the live update is the summary itself"
                assert summary["aoerScore"] == 50.75  # 55*0.40 + 50*0.35 + 45*0.25
                assert (summary["grade"], summary["riskLevel"]) == ("Fair", "Low")
                assert await events_count(conn) == events_before + 1
                history = await api.get("/api/aoer/history", params={"tenantId": first})
                assert [p["aoerScore"] for p in history.json()["history"]] == [50.75]
                status = await api.get("/api/aoer/queue", params={"tenantId": first})
                assert status.json()["queueStatus"]["completed"] == 1

                # Cron with the secret → every tenant queued, then fresh.
                cron_at = datetime.now().astimezone()
                cron = await api.get(
                    "/api/aoer/cron", headers={"Authorization": f"Bearer {CRON_SECRET}"}
                )
                assert cron.json() == {"success": True, "queued": 3}
                text = serve_log.read_text()
                assert "[AOER] Cron job triggered - queuing all tenants for recompute" in text
                assert "[AOER] Queued 3 tenants for recompute" in text

                async def all_fresh() -> bool:
                    for t in tenants:
                        got = await api.get("/api/aoer/summary", params={"tenantId": t})
                        if got.status_code != 200:
                            return False
                        updated = datetime.fromisoformat(got.json()["lastUpdated"])
                        if updated < cron_at - timedelta(seconds=1):
                            return False
                    return True

                await eventually("every summary to be fresh after the cron", all_fresh, worker_log)
                for t in tenants:
                    counts = (await api.get("/api/aoer/queue", params={"tenantId": t})).json()
                    assert counts["queueStatus"]["pending"] == 0
                    assert counts["queueStatus"]["failed"] == 0
                assert await events_count(conn) == events_before + 1 + 3
                for t in tenants:
                    assert f"[AOER] ✅ Completed recompute for tenant {t}" in worker_log.read_text()
            finally:
                assert stop(worker) == 0, worker_log.read_text()[-2000:]

        metrics = (await api.get("/metrics")).text
        assert 'aoer_queue_jobs{priority="high",status="completed"} 1.0' in metrics
        assert 'aoer_queue_jobs{priority="low",status="completed"} 3.0' in metrics


async def next_summary_event(lines: AsyncIterator[str]) -> dict[str, Any]:
    """Skip the stream's initial state; return the data of the first `summary` event."""
    event = ""
    async for line in lines:
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") and event == "summary":
            data: dict[str, Any] = json.loads(line[len("data: ") :])
            return data
    raise AssertionError("the stream ended without a summary event")
