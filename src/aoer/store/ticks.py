"""`aoer_cron_ticks`: each scheduler tick is one row, so it fires once across all workers."""

import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg.types.json import Jsonb

from aoer.store.statements import Statements
from aoer.types import JsonObject, Tick


@dataclass(frozen=True, slots=True)
class UnfinishedTick:
    """A tick claimed but not finished: where its chunks resume, its progress so far."""

    tick: datetime
    resume_after: UUID | None
    result: JsonObject | None


class Ticks(Statements):
    async def try_claim_lock(self, name: str, tick: datetime) -> bool:
        """Take the transaction-level lock of firing `tick`; False when another scheduler is
        firing it right now (call it in the claim's transaction, before `claim`)."""
        return bool(await self._value("try_tick_claim_lock", {"name": name, "tick": tick}))

    async def claim(self, name: str, tick: datetime, fired_by: str) -> bool:
        """Insert the tick; False when another scheduler already did."""
        params = {"name": name, "tick": tick, "fired_by": fired_by}
        return await self._value("claim_tick", params) is not None

    async def record(self, name: str, tick: datetime, result: JsonObject) -> None:
        params = {"name": name, "tick": tick, "result": Jsonb(result, dumps=_dumps)}
        await self._run("record_tick_result", params)

    async def advance(
        self, name: str, tick: datetime, resume_after: UUID | None, result: JsonObject
    ) -> None:
        """Record a committed chunk: where to resume, the progress so far (call it in the
        chunk's transaction)."""
        params = {
            "name": name,
            "tick": tick,
            "resume_after": resume_after,
            "result": Jsonb(result, dumps=_dumps),
        }
        await self._run("advance_tick", params)

    async def unfinished(self, name: str) -> list[UnfinishedTick]:
        return await self._all(UnfinishedTick, "unfinished_ticks", {"name": name})

    async def try_lock(self, name: str) -> bool:
        """Take the session-level lock of `name`'s chunked runs; False when another holds it."""
        return bool(await self._value("try_tick_lock", {"name": name}))

    async def unlock(self, name: str) -> None:
        await self._run("tick_unlock", {"name": name})

    async def release(self, name: str, tick: datetime, fired_by: str) -> None:
        """Give back a claimed tick whose action failed, so it fires again."""
        await self._run("release_tick", {"name": name, "tick": tick, "fired_by": fired_by})

    async def last(self, name: str) -> Tick | None:
        return await self._one(Tick, "last_tick", {"name": name})

    async def in_progress(self, name: str) -> Tick | None:
        """The tick of `name` this transaction is firing and who fires it, if any (for audit
        trails)."""
        return await self._one(Tick, "tick_in_progress", {"name": name})


def _dumps(value: object) -> str:
    return json.dumps(value, default=str)  # datetimes and UUIDs as text
