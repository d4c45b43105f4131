"""Whose rows a batch may hold: bulk ingests (signals, observations) name a dealer per row.

A tenant token may send only its own rows, an organisation only its own tenants' rows; the
first offending row is named with its index in the batch (counting from 0).
"""

from collections.abc import Sequence
from uuid import UUID

from aoer.api.auth import Principal
from aoer.api.errors import Forbidden
from aoer.store import Session


def check_own_rows(principal: Principal, dealer_ids: Sequence[UUID]) -> None:
    """Before any database work: a tenant token's rows must all be its own."""
    if principal.role != "tenant":
        return
    for index, dealer_id in enumerate(dealer_ids):
        if dealer_id != principal.tenant_id:
            raise Forbidden(
                f"row {index}: dealerId {dealer_id} is another tenant; "
                "a tenant token may only send its own rows"
            )


async def check_org_rows(
    principal: Principal, session: Session, dealer_ids: Sequence[UUID]
) -> None:
    """Inside the organisation's scope, where a tenant of another organisation is invisible."""
    if principal.role != "org":
        return
    others = await session.tenants.unknown(sorted(set(dealer_ids)))
    for index, dealer_id in enumerate(dealer_ids):
        if dealer_id in others:
            raise Forbidden(
                f"row {index}: dealerId {dealer_id} is not in this token's organisation"
            )
