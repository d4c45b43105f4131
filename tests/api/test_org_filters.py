"""A list filtered by another organisation, or by another organisation's dealership, answers
403 naming it, as the summary, the jobs and the feed do: it used to be a 200 with an empty
list for some of them, which an integrator reads as "none"."""

import pytest

from tests.api.conftest import Api
from tests.api.org_world import OrgWorld, org_bearer, world

__all__ = ["world"]  # the fixture, imported for pytest

BY_ORG = ["/api/alerts/rules", "/api/alerts/endpoints", "/api/tenants", "/api/audit"]
BY_TENANT = ["/api/alerts/rules", "/api/alerts", "/api/jobs"]
FILTERS = [("orgId", p) for p in BY_ORG] + [("tenantId", p) for p in BY_TENANT]


@pytest.mark.parametrize(("name", "path"), FILTERS)
async def test_a_filter_naming_another_organisations_rows_is_refused_by_name(
    api: Api, world: OrgWorld, name: str, path: str
) -> None:
    mine = org_bearer(api, world.org_a)
    theirs, own = (world.org_b, world.org_a) if name == "orgId" else (world.b, world.a)
    refused = await api.client.get(path, params={name: str(theirs)}, headers=mine)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == (
        f"organisation {theirs} is not this token's organisation"
        if name == "orgId"
        else f"tenant {theirs} is not in this token's organisation"
    )
    allowed = await api.client.get(path, params={name: str(own)}, headers=mine)
    assert allowed.status_code == 200, allowed.text


@pytest.mark.parametrize("path", ["/api/alerts/rules", "/api/tenants", "/api/alerts"])
async def test_a_tenant_token_naming_its_own_organisation_is_answered(
    api: Api, world: OrgWorld, path: str
) -> None:
    """A tenant token carries no organisation claim: naming its own organisation was
    refused as "not this token's organisation" (review). Row Level Security decides."""
    mine = api.bearer(tenant=world.a)
    answer = await api.client.get(path, params={"orgId": str(world.org_a)}, headers=mine)
    assert answer.status_code == 200, answer.text
