"""`answer_observations`: staged bulk upsert (COPY), signals derived from them, and the window
metrics per engine, the competitor leaderboard and the most cited pages (DESIGN §14).

An upsert runs inside the caller's transaction, so nothing is kept unless all rows are good
(the steps are listed on `Observations`): chunk by chunk, `stage` COPYs rows into a temporary
table, `chunk_problems` names the rows that name no tenant or repeat another, `merge` writes
them; after the last chunk, `duplicates` names rows repeating an earlier chunk's, and
`refresh_rollups` rebuilds the merged days' rollups (`answer_observation_days`,
`answer_competitor_days`, `answer_cited_url_days`), from which the window metrics are read;
`derive_signals` fills those days' aeo/geo. Every write of observations goes through this
path, so the rollups always match them.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal
from uuid import UUID

from aoer.db.queries import query
from aoer.store.errors import translated
from aoer.store.statements import Statements

PROGRESS_EVERY = 1000  # rows between progress callbacks
MAX_PROBLEMS_REPORTED = 1000  # staged rows named in one error
TOP_COMPETITORS = 10  # the leaderboard's length
TOP_CITED_URLS = 10

# The temporary tables of an ingest (dropped at commit).
STAGE_TABLES = (
    "create_observation_stage",
    "create_observation_keys",
    "create_fresh_stage_days",
    "create_staged_days",
)
# Rebuilding the staged days' rollups, in order.
ROLLUP_REFRESH = (
    "refresh_observation_days",
    "clear_competitor_days",
    "fill_competitor_days",
    "clear_cited_url_days",
    "fill_cited_url_days",
)

# The order of a staged row's values after its line number (the stage table's columns).
OBSERVATION_COLUMNS = (
    "dealer_id",
    "date",
    "engine",
    "prompt",
    "mentioned",
    "position",
    "cited",
    "cited_urls",
    "competitors",
    "sentiment",
)


@dataclass(frozen=True, slots=True)
class StageProblem:
    line: int
    kind: Literal["unknown", "duplicate"]
    dealer_id: UUID
    first_line: int | None  # for a duplicate: the line it repeats


@dataclass(frozen=True, slots=True)
class EngineWindow:
    """One engine's metrics over the window (engine None: all engines)."""

    engine: str | None
    window_from: date
    window_to: date
    answers: int
    visibility: Decimal | None
    citation_rate: Decimal | None
    avg_position: Decimal | None
    share_of_voice: Decimal | None
    sentiment: Decimal | None


@dataclass(frozen=True, slots=True)
class CompetitorWindow:
    name: str
    mentions: int
    share_of_voice: Decimal | None


@dataclass(frozen=True, slots=True)
class CitedUrl:
    url: str
    count: int


@dataclass(frozen=True, slots=True)
class TenantVoice:
    tenant_id: UUID
    share_of_voice: Decimal | None


@dataclass(frozen=True, slots=True)
class EngineReport:
    overall: EngineWindow
    engines: list[EngineWindow]
    competitors: list[CompetitorWindow]
    cited_urls: list[CitedUrl]


class Observations(Statements):
    """An ingest, inside the caller's transaction: `open_stage` once; per chunk of rows,
    `stage` (COPY into the stage, which holds one chunk), `chunk_problems`, `merge` while
    every chunk so far is clean, then `next_chunk`; after the last, `duplicates` (rows
    repeating a row of an earlier chunk) and, when all is clean, `refresh_rollups`,
    `staged_tenants` and `derive_signals` over every day merged."""

    async def open_stage(self) -> None:
        await self._run("observation_ingest_memory")
        for name in STAGE_TABLES:
            await self._run(name)

    async def stage(
        self,
        rows: Iterable[Sequence[object]],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """COPY rows given as `(line, *OBSERVATION_COLUMNS)` into the stage; the number
        staged."""
        count = 0
        with translated():
            async with self.conn.cursor().copy(query("copy_observation_stage")) as copy:
                for count, row in enumerate(rows, start=1):
                    await copy.write_row(row)
                    if progress is not None and count % PROGRESS_EVERY == 0:
                        progress(PROGRESS_EVERY)
        if progress is not None:
            progress(count % PROGRESS_EVERY)
        return count

    async def chunk_problems(self) -> list[StageProblem]:
        """Staged rows naming no tenant, or repeating an earlier row of the chunk."""
        return await self._all(
            StageProblem, "observation_stage_problems", {"limit": MAX_PROBLEMS_REPORTED}
        )

    async def merge(self) -> int:
        """Write the staged rows (replacing what they re-send); the number written. Holds the
        staged tenants' ingest lock until commit."""
        await self._run("lock_staged_tenants")
        await self._run("clear_fresh_stage_days")
        await self._run("find_fresh_stage_days")
        upserted = await self._run("insert_fresh_observations")
        upserted += await self._run("merge_observation_stage")
        await self._run("keep_staged_days")
        return upserted

    async def refresh_rollups(self) -> None:
        """Rebuild the rollups of every day merged (once, after the last chunk: a day's
        rows may span chunks, and one pass plans better than one per chunk)."""
        for name in ROLLUP_REFRESH:
            await self._run(name)

    async def staged_tenants(self) -> list[UUID]:
        """The tenants of every day merged."""
        return [UUID(str(v)) for v in await self._values("staged_observation_tenants")]

    async def derive_signals(self) -> list[UUID]:
        """Fill aeo/geo of every day merged from its observations (supplied values kept);
        the tenants whose signal rows were written."""
        return [UUID(str(v)) for v in await self._values("derive_signals_from_stage")]

    async def next_chunk(self) -> None:
        """Keep the staged rows' keys (for `duplicates`) and empty the stage."""
        await self._run("keep_stage_keys")
        await self._run("clear_observation_stage")

    async def duplicates(self) -> list[StageProblem]:
        """Rows repeating an earlier row's dealer, day, engine and prompt, in any chunk."""
        return await self._all(
            StageProblem, "observation_key_duplicates", {"limit": MAX_PROBLEMS_REPORTED}
        )

    async def observed(self, tenant_ids: Sequence[UUID]) -> set[UUID]:
        """Those of these tenants that have observations."""
        found = await self._values("tenants_with_observations", {"ids": list(tenant_ids)})
        return {UUID(str(v)) for v in found}

    async def share_of_voice(self, tenant_ids: Sequence[UUID]) -> dict[UUID, Decimal | None]:
        """Each tenant's overall share of voice over the window (absent: no observations)."""
        rows = await self._all(
            TenantVoice, "share_of_voice_of_tenants", {"tenant_ids": list(tenant_ids)}
        )
        return {row.tenant_id: row.share_of_voice for row in rows}

    async def report(
        self,
        tenant_id: UUID,
        *,
        competitors: int = TOP_COMPETITORS,
        cited_urls: int = TOP_CITED_URLS,
    ) -> EngineReport:
        """The window metrics of one tenant."""
        params = {"tenant_id": tenant_id}
        windows = await self._all(EngineWindow, "engine_window", params)
        rivals = await self._all(
            CompetitorWindow, "competitor_window", params | {"limit": competitors}
        )
        urls = await self._all(CitedUrl, "cited_url_window", params | {"limit": cited_urls})
        overall, engines = windows[0], windows[1:]
        return EngineReport(overall, engines, rivals, urls)
