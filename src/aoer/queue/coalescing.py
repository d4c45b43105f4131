"""Concurrent enqueues of one process, sent as one statement (issue 16: mixed API load).

Every POST /api/aoer/queue used to take a pooled connection for its own upsert. While workers
drain, each of those statements waits for CPU and for its commit to be flushed, and the
requests behind them wait for a connection: at 64 connections mixing reads and enqueues,
an enqueue spent ~460 ms of its ~500 ms waiting for the pool and ~32 ms in its statement
(bench/README.md). `Enqueuer` sends the enqueues that arrive while its statements are in
flight as the next statement, one per priority, through the queue's own `enqueue_many`
(the same upsert, coalescing and wake-up as a single enqueue): one connection, one commit
and one round trip for however many requests came in meanwhile.

Only callers that see every tenant (admin and service tokens: no Row Level Security scope)
share statements; a tenant's or an organisation's enqueue runs in its own scoped session as
before. Each request still answers only once its job is committed, and an error in a shared
statement is every sharing request's error (a lost lock race excepted: then each tenant is
tried on its own): nothing is acknowledged that was not written.
"""

import asyncio
import dataclasses
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeAlias
from uuid import UUID

from aoer.errors import ConcurrencyConflict
from aoer.queue.jobs import enqueue_many
from aoer.store import Session
from aoer.types import EnqueuedJob, Priority

Waiters: TypeAlias = dict[UUID, list[asyncio.Future[EnqueuedJob | None]]]


class Enqueuer:
    """Shares enqueue statements among requests that arrive while others run.

    Up to `max_in_flight` statements run at once, each taking every request waiting when it
    starts: a quiet process sends each enqueue on its own at once, a busy one batches them
    (and one statement waiting on a row lock, a claim's, holds up only its own requests).
    `session` opens an unscoped store session (a pooled connection); `enqueue` answers the
    tenant's job, or None when the tenant is unknown or inactive (the caller says which)."""

    def __init__(
        self, session: Callable[[], AbstractAsyncContextManager[Session]], max_in_flight: int = 4
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self._session = session
        self._max_in_flight = max_in_flight
        self._pending: dict[Priority, Waiters] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.statements = 0  # statements sent (tests, benchmarks)

    async def enqueue(self, tenant_id: UUID, priority: Priority) -> EnqueuedJob | None:
        answer: asyncio.Future[EnqueuedJob | None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(priority, {}).setdefault(tenant_id, []).append(answer)
        if len(self._tasks) < self._max_in_flight:
            self._tasks.add(asyncio.create_task(self._send()))
        return await answer

    async def _send(self) -> None:
        try:
            await self._send_pending()
        finally:
            # Leave the count of statements in flight as soon as this one takes no more
            # requests, not a turn later in a done callback: a request answered by it may
            # enqueue again before that turn, and would wait for a statement that had ended.
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)

    async def _send_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            # Priorities in the order they were first asked for (a tenant asked for at two
            # ends at the higher one either way: the upsert only raises a waiting job's).
            while batch:
                priority = next(iter(batch))
                waiters = batch.pop(priority)
                try:
                    await self._one_statement(priority, waiters)
                except BaseException:  # cancelled (shutdown): nothing answers the rest
                    for rest in (*batch.values(), *self._pending.values()):
                        _fail(rest, None)
                    self._pending = {}
                    raise

    async def _one_statement(self, priority: Priority, waiters: Waiters) -> None:
        try:
            async with self._session() as session:
                jobs = await enqueue_many(session, list(waiters), priority)
            self.statements += 1
        except ConcurrencyConflict as exc:
            if len(waiters) == 1:
                _fail(waiters, exc)
                return
            # A lock wait ran out (a claim holds one of the rows: a worker frozen mid-claim)
            # or two shared statements deadlocked: each tenant again on its own, so only the
            # held ones fail, as they would have without sharing.
            for tenant_id, answers in waiters.items():
                await self._one_statement(priority, {tenant_id: answers})
            return
        except Exception as exc:  # every request sharing the statement gets its error
            _fail(waiters, exc)
            return
        except BaseException:
            _fail(waiters, None)
            raise
        found = {job.tenant_id: job for job in jobs}
        for tenant_id, answers in waiters.items():
            job = found.get(tenant_id)
            for n, answer in enumerate(answers):
                if not answer.done():  # a request cancelled meanwhile wants no answer
                    # The second request for one tenant in a statement joined the first's job.
                    answer.set_result(job if job is None or n == 0 else _joined(job))

    async def close(self) -> None:
        """Wait for the statements in flight (shutdown): their requests get their answers."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _joined(job: EnqueuedJob) -> EnqueuedJob:
    return dataclasses.replace(job, coalesced=True)


def _fail(waiters: Waiters, exc: Exception | None) -> None:
    """Answer every waiting request with `exc`, or cancel it when there is none."""
    for answers in waiters.values():
        for answer in answers:
            if answer.done():
                continue
            if exc is None:
                answer.cancel()
            else:
                answer.set_exception(exc)
