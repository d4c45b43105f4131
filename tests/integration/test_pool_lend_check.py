"""The pool's check of the connections it lends (`LendCheck`, src/aoer/db/pool.py): no round
trip for a connection just given back, a round trip for one the server ended or that sat
idle, and a dead one is replaced instead of being lent."""

import asyncio

from aoer.db.pool import Connection, LendCheck, open_pool


async def backend_pid(conn: Connection) -> int:
    cur = await conn.execute("SELECT pg_backend_pid() AS pid")
    row = await cur.fetchone()
    assert row is not None
    return int(str(row["pid"]))


async def ended(conn: Connection, pid: int) -> None:
    """End backend `pid` and wait until it is gone (the server ends it asynchronously)."""
    await conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


async def test_a_connection_given_back_just_now_is_lent_without_a_round_trip(
    db_url: str,
) -> None:
    check = LendCheck(bypass_s=60)
    async with open_pool(db_url, max_size=1, lend_check=check) as pool:
        async with pool.connection() as conn:
            first = await backend_pid(conn)
        before = check.round_trips
        for _ in range(5):
            async with pool.connection() as conn:
                assert await backend_pid(conn) == first
        assert check.round_trips == before


async def test_a_connection_idle_longer_than_the_window_is_checked(db_url: str) -> None:
    check = LendCheck(bypass_s=0.05)
    async with open_pool(db_url, max_size=1, lend_check=check) as pool:
        async with pool.connection() as conn:
            await backend_pid(conn)
        before = check.round_trips
        await asyncio.sleep(0.1)
        async with pool.connection() as conn:
            await backend_pid(conn)
        assert check.round_trips == before + 1


async def test_a_connection_the_server_ended_is_replaced_not_lent(
    db_url: str, conn: Connection
) -> None:
    """Inside the window: the server's goodbye makes the socket readable, so the lend asks,
    finds it dead, and the pool lends a new connection that works."""
    check = LendCheck(bypass_s=60)
    async with open_pool(db_url, max_size=1, lend_check=check) as pool:
        async with pool.connection() as pooled:
            dead = await backend_pid(pooled)
        await ended(conn, dead)
        before = check.round_trips
        async with pool.connection(timeout=10) as pooled:
            assert await backend_pid(pooled) != dead
        assert check.round_trips > before
