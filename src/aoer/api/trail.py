"""Audit entries for the API's sensitive operations (DESIGN §12): who, from where, on what.

Handlers record `audit_entry(request, principal, "tenant.move", ...)` through
`session.audit.record` inside the transaction of the change itself."""

from typing import Any
from uuid import UUID

from fastapi import Request

from aoer.api.auth import Principal
from aoer.store.audit import AuditEntry


def client_ip(request: Request) -> str | None:
    """The address the request came from, as the audit log records it."""
    return request.client.host if request.client is not None else None


def audit_entry(
    request: Request,
    principal: Principal,
    action: str,
    *,
    org_id: UUID | None = None,
    tenant_id: UUID | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """An entry for `action` by the caller; `org_id` defaults to the caller's organisation."""
    return AuditEntry(
        actor=principal.subject,
        role=principal.role,
        action=action,
        org_id=org_id if org_id is not None else principal.org_id,
        tenant_id=tenant_id,
        target=target,
        details=details or {},
        ip=client_ip(request),
    )
