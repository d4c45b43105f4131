"""`aiv_raw_signals`: bulk upsert through COPY into a staging table, all rows or none."""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID

from aoer.db.queries import query
from aoer.errors import AoerError
from aoer.store.errors import translated
from aoer.store.statements import Statements

PROGRESS_EVERY = 1000  # rows between progress callbacks
MAX_UNKNOWN_REPORTED = 1000  # rows of unknown dealers named in one error


@dataclass(frozen=True, slots=True)
class UnknownDealer:
    line: int
    dealer_id: UUID


@dataclass(frozen=True, slots=True)
class SignalLevel:
    dealer_id: UUID
    date: date
    aeo: Decimal
    geo: Decimal | None


class UnknownDealers(AoerError):
    """Some rows name dealers that are not tenants; nothing was written."""

    def __init__(self, unknown: list[UnknownDealer]) -> None:
        super().__init__(", ".join(dict.fromkeys(str(u.dealer_id) for u in unknown)))
        self.unknown = unknown


class Signals(Statements):
    async def upsert(
        self,
        rows: Iterable[Sequence[object]],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Upsert rows given as `(line, *SIGNAL_COLUMNS)` in one transaction; rows upserted.

        Raises `UnknownDealers` (the first line of each) before anything is written."""
        async with self.transaction():
            await self._run("create_signal_stage")
            with translated():
                async with self.conn.cursor().copy(query("copy_signal_stage")) as copy:
                    for count, row in enumerate(rows, start=1):
                        await copy.write_row(row)
                        if progress is not None and count % PROGRESS_EVERY == 0:
                            progress(PROGRESS_EVERY)
            unknown = await self._all(
                UnknownDealer, "unknown_signal_dealers", {"limit": MAX_UNKNOWN_REPORTED}
            )
            if unknown:
                raise UnknownDealers(unknown)
            return await self._int("merge_signal_stage")

    async def recent_levels(self, ids: Sequence[UUID], days: int) -> list[SignalLevel]:
        """These tenants' aeo/geo of the last `days` days (days with an aeo)."""
        return await self._all(
            SignalLevel, "recent_signal_levels", {"ids": list(ids), "days": days}
        )

    async def mark_derived(self, ids: Sequence[UUID], days: int) -> int:
        """Let observations replace these tenants' aeo/geo of the last `days` days."""
        return await self._run("mark_signals_derived", {"ids": list(ids), "days": days})
