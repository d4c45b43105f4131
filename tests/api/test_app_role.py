"""The API's tests connect as the production login role (README "Production roles"), as the
API does in production, so this suite proves the API works with no more than that role holds."""

from aoer.db.pool import Pool
from aoer.db.roles import APP_GROUP
from tests.conftest import TEST_APP_ROLE


async def test_the_api_suite_connects_as_the_app_role(pool: Pool) -> None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT current_user AS name, rolsuper AS superuser, rolbypassrls AS bypassrls,"
            " pg_has_role(current_user, %s, 'MEMBER') AS member"
            " FROM pg_roles WHERE rolname = current_user",
            (APP_GROUP,),
        )
        role = await cur.fetchone()
    assert role == {"name": TEST_APP_ROLE, "superuser": False, "bypassrls": False, "member": True}
