"""`audit_log`: one row per sensitive operation (DESIGN §12), append-only.

Record an entry inside the transaction of the change it describes, so the two commit together:

    async with session.transaction():
        ...the change...
        await session.audit.record(AuditEntry(actor=..., role=..., action="job.retry", ...))
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from aoer.store.statements import Statements

AUDIT_PAGE_MAX = 500


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What happened (`action`, dotted lower case: `org.create`, `key.revoke`, ...), who did
    it, whose it was, and on what (`target`: an id or name)."""

    actor: str
    role: str
    action: str
    org_id: UUID | None = None
    tenant_id: UUID | None = None
    target: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    role: str
    org_id: UUID | None
    tenant_id: UUID | None
    action: str
    target: str | None
    details: dict[str, Any]
    ip: str | None


class Audit(Statements):
    async def record(self, entry: AuditEntry) -> int:
        params = {
            "actor": entry.actor,
            "role": entry.role,
            "org_id": entry.org_id,
            "tenant_id": entry.tenant_id,
            "action": entry.action,
            "target": entry.target,
            "details": Jsonb(entry.details),
            "ip": entry.ip,
        }
        return await self._int("record_audit", params)

    async def page(
        self,
        *,
        org_id: UUID | None = None,
        tenant_id: UUID | None = None,
        action: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Newest first; `before` is the last id of the previous page."""
        params = {
            "org_id": org_id,
            "tenant_id": tenant_id,
            "action": action,
            "before": before,
            "limit": max(1, min(limit, AUDIT_PAGE_MAX)),
        }
        return await self._all(AuditRecord, "list_audit", params)
