"""Server-Sent Events: a tenant's summary and queue status, pushed as recomputes commit."""

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from aoer.api.auth import (
    Principal,
    TenantAccess,
    authenticate,
    ensure_tenant_access,
    require_roles,
)
from aoer.api.context import Context
from aoer.api.errors import Forbidden
from aoer.api.events import Closing, ServerEvent, Subscription
from aoer.api.responses import AUTHENTICATED, error_responses
from aoer.api.schemas import queue_status_json, summary_json
from aoer.errors import AoerError, UnknownTenant
from aoer.waiting import get_within

router = APIRouter(tags=["aoer"])

RECONNECT_MS = 3000  # EventSource reconnect delay the stream asks for
HEARTBEAT = b": heartbeat\n\n"
# How often an open stream checks its caller again: a key revoked, a session signed out or a
# tenant moved out of the caller's organisation after the stream opened ends it within this
# (plus the key and session registries' own refresh, 1 s), inside DESIGN §12's 5 s.
RECHECK_S = 2.0

# Raises (401, 403, 503, ...) when the stream's caller may no longer have it.
Recheck = Callable[[], Awaitable[None]]

_DESCRIPTION = """\
`text/event-stream`. On connect: the current `summary` (when one exists) and `queue` events;
then `event: summary` (data: the same JSON as GET /api/aoer/summary) each time a recompute of
the tenant commits, and `event: queue` (data: its queueStatus) when its jobs change. A
comment line (`: heartbeat`) every 15 seconds keeps proxies from closing the connection. The
stream ends when the token expires, and within seconds of its API key being revoked, its
session signed out or (for an organisation) its tenant moved to another organisation, with a
last comment line saying why (`: closed: the API key was revoked`). An admin may leave out
`tenantId` to receive every tenant's `summary` and `alert` events (the dashboard's fleet
view), an organisation those of its own tenants; no initial or `queue` events then.

Open streams are capped per API process: `AOER_SSE_MAX_PER_PRINCIPAL` (10) for one token
subject (with its role and tenant) and `AOER_SSE_MAX_STREAMS` (1000) in all. Past either the
answer is 429 with `Retry-After`; a stream's slot is free again as soon as it ends."""


@router.get(
    "/api/aoer/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless event stream",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **error_responses(*AUTHENTICATED, 404, 422, 429),
    },
    summary="Live summary and queue updates (Server-Sent Events)",
    description=_DESCRIPTION,
)
async def stream(
    request: Request,
    principal: Annotated[Principal, Depends(require_roles("admin", "org", "tenant"))],
    ctx: Context,
    tenant_id: Annotated[
        UUID | None,
        Query(
            alias="tenantId",
            description="The tenant's UUID (admins and organisations: leave out for all"
            " the caller sees)",
        ),
    ] = None,
) -> StreamingResponse:
    owner = stream_owner(principal)
    if tenant_id is None:
        if principal.role not in ("admin", "org"):
            raise Forbidden(
                "only an admin or an organisation may stream every tenant it sees: pass tenantId"
            )
        # An organisation's fleet: its tenants as they are when each event is published, so
        # a tenant moved away stops appearing at once and one moved in starts.
        org_id = principal.org_id if principal.role == "org" else None
        fleet = ctx.hub.subscribe(None, owner, org_id=org_id)
        deadline = principal.expires_at.timestamp()
        recheck = still_allowed(request, None)
        return EventStreamResponse(
            fleet, event_stream(fleet, [], ctx.heartbeat_s, deadline, recheck)
        )
    await ensure_tenant_access(principal, tenant_id)
    access = TenantAccess(principal, tenant_id)
    # Subscribe before reading the current state, so no update falls between the two.
    subscription = ctx.hub.subscribe(access.tenant_id, owner)
    try:
        async with ctx.session(access.principal) as session:
            found = await session.scores.summary(access.tenant_id)
            statuses = await session.jobs.statuses([access.tenant_id])
        if not found.tenant_found or access.tenant_id not in statuses:
            raise UnknownTenant(f"unknown tenant {access.tenant_id}")
    except BaseException:
        subscription.close()
        raise
    initial = [ServerEvent("queue", queue_status_json(statuses[access.tenant_id]))]
    if found.summary is not None:
        initial.insert(0, ServerEvent("summary", summary_json(found.summary)))
    deadline = access.principal.expires_at.timestamp()
    recheck = still_allowed(request, access.tenant_id)
    return EventStreamResponse(
        subscription, event_stream(subscription, initial, ctx.heartbeat_s, deadline, recheck)
    )


def still_allowed(request: Request, tenant_id: UUID | None) -> Recheck:
    """The stream's caller checked again from its request's own credentials: the key or
    session still valid and, for a tenant's stream, the tenant still the caller's."""

    async def check() -> None:
        principal = await authenticate(request)
        if tenant_id is not None:
            await ensure_tenant_access(principal, tenant_id)

    return check


def stream_owner(principal: Principal) -> tuple[str, str, UUID | None]:
    """Whom the per-principal cap counts: the token's subject, with its role and tenant."""
    return (principal.subject, principal.role, principal.tenant_id)


class EventStreamResponse(StreamingResponse):
    """An event stream that frees its subscription however the response ends: the generator's
    own `finally` does not run when the client leaves between two chunks or before the first."""

    def __init__(self, subscription: Subscription, events: AsyncIterator[bytes]) -> None:
        super().__init__(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.subscription.close()


async def event_stream(
    subscription: Subscription,
    initial: list[ServerEvent],
    heartbeat_s: float,
    deadline: float,
    recheck: Recheck | None = None,
    recheck_s: float = RECHECK_S,
) -> AsyncIterator[bytes]:
    """Yield events until the client leaves (Starlette cancels us), the token expires, the
    caller is refused when `recheck`ed (every `recheck_s`), or the hub shuts down; always
    unsubscribe."""
    try:
        yield f"retry: {RECONNECT_MS}\n\n".encode()
        for first in initial:
            yield first.encode()
        # A heartbeat every `heartbeat_s` however busy the stream is (DESIGN §6): clients and
        # proxies can count on the cadence to tell a live stream from a dead one.
        next_beat = time.monotonic() + heartbeat_s
        next_check = time.monotonic() + recheck_s if recheck is not None else float("inf")
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                return
            if recheck is not None and time.monotonic() >= next_check:
                refused = await _refusal(recheck)
                if refused is not None:
                    yield f": closed: {refused}\n\n".encode()
                    return
                next_check = time.monotonic() + recheck_s
            until_beat = next_beat - time.monotonic()
            if until_beat <= 0:
                yield HEARTBEAT
                next_beat = time.monotonic() + heartbeat_s
                continue
            until_check = next_check - time.monotonic()
            event: ServerEvent | Closing | None
            try:
                event = await get_within(
                    subscription.inbox, max(0.0, min(until_beat, remaining, until_check))
                )
            except TimeoutError:
                continue
            if event is None:
                return
            yield event.encode()
            if isinstance(event, Closing):
                return
    finally:
        with contextlib.suppress(Exception):
            subscription.close()


async def _refusal(recheck: Recheck) -> str | None:
    """Why the caller may no longer have the stream (one line), or None while it may. A check
    that cannot be made (the database away: 503) ends the stream too, as it refuses a
    request; the client's reconnect asks again."""
    try:
        await recheck()
    except AoerError as exc:
        return " ".join(str(exc).split()) or type(exc).__name__
    return None
