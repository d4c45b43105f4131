"""A list filtered by another organisation, or by another organisation's dealership, answers
403 naming it, as the summary, the jobs and the feed do: it used to be a 200 with an empty
list for some of them, which an integrator reads as "none"."""

import pytest

from tests.api.conftest import Api
from tests.api.org_world import OrgWorld, org_bearer, world

__all__ = ["world"]  # the fixture, imported for pytest

ORG_FILTERED = ["/api/alerts/rules", "/api/alerts/endpoints", "/api/tenants", "/api/audit"]
TENANT_FILTERED = ["/api/alerts/rules", "/api/alerts", "/api/jobs"]


@pytest.mark.parametrize("path", ORG_FILTERED)
async def test_another_organisations_filter_is_refused_by_name(
    api: Api, world: OrgWorld, path: str
) -> None:
    mine = org_bearer(api, world.org_a)
    theirs = await api.client.get(path, params={"orgId": str(world.org_b)}, headers=mine)
    assert theirs.status_code == 403, theirs.text
    assert theirs.json()["error"] == (
        f"organisation {world.org_b} is not this token's organisation"
    )
    own = await api.client.get(path, params={"orgId": str(world.org_a)}, headers=mine)
    assert own.status_code == 200, own.text


@pytest.mark.parametrize("path", TENANT_FILTERED)
async def test_another_organisations_dealership_filter_is_refused_by_name(
    api: Api, world: OrgWorld, path: str
) -> None:
    mine = org_bearer(api, world.org_a)
    theirs = await api.client.get(path, params={"tenantId": str(world.b)}, headers=mine)
    assert theirs.status_code == 403, theirs.text
    assert theirs.json()["error"] == f"tenant {world.b} is not in this token's organisation"
    own = await api.client.get(path, params={"tenantId": str(world.a)}, headers=mine)
    assert own.status_code == 200, own.text
