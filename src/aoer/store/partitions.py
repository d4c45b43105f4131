"""Monthly partitions of `aiv_raw_signals` and `metrics_events` (0014_partitions.sql): created
ahead by the daily retention tick, dropped whole once past their retention age."""

from dataclasses import dataclass

from aoer.store.statements import Statements

PARTITIONED_TABLES = ("aiv_raw_signals", "metrics_events")


@dataclass(frozen=True, slots=True)
class Dropped:
    """What retention removed from one partitioned table."""

    dropped: int  # whole monthly partitions
    deleted: int  # rows of the default partition


class Partitions(Statements):
    async def create_ahead(self, parent: str, months: int) -> int:
        """This month's partition and `months` more; how many were missing and now exist."""
        async with self.transaction():
            return await self._int("create_partitions_ahead", {"parent": parent, "months": months})

    async def drop_before(self, parent: str, days: int) -> Dropped:
        """Drop the monthly partitions that end `days` or more days ago (and the default
        partition's rows older than that)."""
        async with self.transaction():
            found = await self._one(
                Dropped, "drop_partitions_before", {"parent": parent, "days": days}
            )
        return found or Dropped(0, 0)

    async def names(self, parent: str) -> list[str]:
        return [str(v) for v in await self._values("partition_names", {"parent": parent})]
