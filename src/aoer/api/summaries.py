"""Reading a summary: the cache first, else PostgreSQL under the caller's scope, then cached."""

from uuid import UUID

from aoer.api.auth import Principal
from aoer.api.context import ApiContext
from aoer.api.schemas import summary_json
from aoer.errors import NotFound, UnknownTenant


async def summary_body(ctx: ApiContext, principal: Principal, tenant_id: UUID) -> bytes:
    """The JSON body of the tenant's summary (the caller's access is already checked)."""
    cached = await ctx.cache.get(tenant_id)
    if cached is not None:
        return cached
    ticket = ctx.cache.ticket(tenant_id)
    async with ctx.session(principal) as session:
        found = await session.scores.summary(tenant_id)
    if not found.tenant_found:
        raise UnknownTenant(f"unknown tenant {tenant_id}")
    if found.summary is None:
        raise NotFound(
            f"tenant {tenant_id} has no AOER summary yet: it was never computed "
            "(queue it with POST /api/aoer/queue)"
        )
    body = summary_json(found.summary)
    await ctx.cache.put(ticket, body)
    return body
