"""Process plumbing the commands share: stop signals, SIGUSR1's list of where each task
waits, and a worker's own metrics endpoint."""

import asyncio
import logging
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aoer.db.pool import lower_priority, lower_session_autogroup
from aoer.errors import AoerError
from aoer.waiting import log_tasks

if TYPE_CHECKING:
    from aoer.api.metrics import Metrics
    from aoer.store import Store

logger = logging.getLogger(__name__)

OWN_AUTOGROUP = Path("/proc/self/autogroup")
AUTOGROUP_SWITCH = Path("/proc/sys/kernel/sched_autogroup_enabled")
AUTOGROUP_WAIT_S = 3.0


def install_stop_handlers(stop: Callable[[], None]) -> None:
    """SIGTERM/SIGINT: stop claiming, finish the batch in hand, exit 0. SIGUSR1: log where
    each task waits (the process goes on)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    loop.add_signal_handler(signal.SIGUSR1, log_tasks)


def serve_worker_metrics(host: str, port: int) -> "Metrics":
    """This worker's job, batch and latency metrics on http://host:port/metrics (Prometheus
    scrapes every worker; queue depth stays with the API, which reads it fleet-wide)."""
    from prometheus_client import start_http_server

    from aoer.api.metrics import Metrics

    metrics = Metrics(queue_gauges=False)
    try:
        start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:  # the port is taken, or the address is not this host's
        why = exc.strerror or str(exc)
        raise AoerError(f"cannot serve worker metrics on {host}:{port}: {why}") from None
    logger.info("[AOER] worker metrics on http://%s:%d/metrics", host, port)
    return metrics


async def run_in_background(nice: int, store: "Store") -> None:
    """A worker process is background work: this process at CPU niceness `nice` (never
    raised back: only root may), its session's autogroup too where it leads one, and a line
    saying where its database sessions run (they lower their own priority as they connect,
    src/aoer/db/pool.py)."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > current:
        current = os.nice(nice - current)
    own_group = await asyncio.to_thread(lower_own_autogroup, nice) if nice > 0 else None
    async with store.pool.connection() as conn:
        backend = await lower_priority(conn, nice) if nice > 0 else None
        backend_group = await lower_session_autogroup(conn, nice) if nice > 0 else None
    where = (
        f"its database sessions at {backend}"
        if backend is not None
        else "its database sessions at the server's normal priority"
        + ("" if nice == 0 else " (the server has no `prioritize` extension: migration 0022)")
    )
    logger.info(
        "[AOER] worker at CPU niceness %d (AOER_WORKER_NICE), %s; %s",
        current,
        where,
        _autogroups_line(nice, own_group, backend_group),
        extra={
            "action": "priority",
            "nice": current,
            "backend_nice": backend,
            "autogroup_nice": own_group,
            "backend_autogroup_nice": backend_group,
        },
    )


def _autogroups_line(nice: int, own: int | None, sessions: int | None) -> str:
    if nice == 0:
        return "autogroups untouched"
    scheduler = (
        "the kernel shares the CPU between sessions first"
        if autogroups_on()
        else "autogroups are off, niceness alone ranks processes"
    )
    mine = (
        f"this process's session at {own}"
        if own is not None
        else "this process's session at the normal priority (it does not lead its session:"
        " run it as a service or under setsid)"
    )
    theirs = (
        f"its database sessions' at {sessions}"
        if sessions is not None
        else "its database sessions' at the normal priority (no aoer_lower_session_autogroup:"
        " migration 0027 as a superuser)"
    )
    return f"autogroups ({scheduler}): {mine}, {theirs}"


def autogroups_on() -> bool:
    """Whether the kernel shares the CPU between sessions before niceness counts."""
    try:
        return AUTOGROUP_SWITCH.read_text().strip() == "1"
    except OSError:
        return False


def lower_own_autogroup(nice: int) -> int | None:
    """Lower the autogroup of this process's session to niceness `nice` (never raise it) when
    the process leads that session (a service, a process started with setsid): otherwise the
    group is a terminal's or a supervisor's, not this process's to change. The group's
    niceness, or None where it was not changed (not a leader, no autogroups in the kernel).

    With autogroups on (Debian's and Ubuntu's kernel default), `os.nice` only ranks this
    process among its own session's: a worker started as its own service would otherwise take
    the CPU from the API as any other session does (migration 0027 has the numbers)."""
    if os.getsid(0) != os.getpid():
        return None
    try:
        found = re.search(r"nice (-?\d+)", OWN_AUTOGROUP.read_text())
    except OSError:
        return None
    if found is None:
        return None
    current = int(found[1])
    if current >= nice:
        return current
    deadline = time.monotonic() + AUTOGROUP_WAIT_S
    while True:
        try:
            OWN_AUTOGROUP.write_text(str(nice))
            return nice
        except BlockingIOError:  # the kernel takes one change every 100 ms, host-wide
            if time.monotonic() >= deadline:
                logger.warning("this worker's autogroup kept its CPU priority (EAGAIN)")
                return current
            time.sleep(0.05)
        except OSError:
            return None
