"""Which role the API's connections run as: the owner by default, and under
AOER_TEST_APP_ROLE=1 the production login role (README "Production roles"), so the suite
that runs after this proves the API works with no more than that role holds."""

from aoer.db.pool import Pool
from tests.conftest import AS_APP_ROLE, TEST_APP_ROLE


async def test_the_api_connects_as_the_role_the_suite_runs_under(pool: Pool) -> None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT current_user AS name, rolsuper AS superuser, rolbypassrls AS bypassrls"
            " FROM pg_roles WHERE rolname = current_user"
        )
        role = await cur.fetchone()
    assert role is not None
    if AS_APP_ROLE:
        assert role == {"name": TEST_APP_ROLE, "superuser": False, "bypassrls": False}
    else:
        assert role["name"] != TEST_APP_ROLE
