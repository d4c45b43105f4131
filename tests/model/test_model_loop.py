"""The self-improving loop on real PostgreSQL: train, promote or not, re-queue, score, roll back."""

import asyncio
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

import numpy as np
import psycopg
import pytest

from aoer.bootstrap.worker import build_worker
from aoer.config import Settings
from aoer.db.pool import Connection, Pool, connect
from aoer.errors import InvalidInput
from aoer.queue import process_batch
from aoer.scoring import model
from aoer.training import COMPONENTS, V1_WEIGHTS, Policy, Window, evaluate
from aoer.types import ClaimedJob
from aoer.worker.scheduler import fire_if_due
from tests.conftest import MakeTenant, lock_waits, services_for, session_of
from tests.model import in_memory
from tests.model.synthetic import (
    MONDAY_4AM,
    POLICY,
    TRUE_WEIGHTS,
    expected_score,
    seed,
    weekly_training,
)

# Stated tolerance: with 760 training rows and noise of 2 points, each weight's standard
# error is about 0.004, so 0.03 is a generous bound that still rules out v1 (off by ≥ 0.10).
WEIGHT_TOLERANCE = Decimal("0.03")
INTERCEPT_TOLERANCE = Decimal("2.5")  # AIV points; the truth is 0
CLI = model.Actor("cli:test", "admin")


async def rows(conn: Connection, sql: str, *params: object) -> list[dict[str, Any]]:
    cur = await conn.execute(sql, params)  # type: ignore[arg-type]
    return [dict(r) for r in await cur.fetchall()]


async def drain(pool: Pool, db_url: str) -> None:
    settings = Settings(AOER_RUN_CRON=False, AOER_BATCH_SIZE=50)  # type: ignore[call-arg]
    await asyncio.wait_for(build_worker(services_for(settings, pool, db_url), drain=True).run(), 30)


async def scores(conn: Connection, tenants: list[UUID]) -> dict[UUID, tuple[Decimal, str]]:
    found = await rows(
        conn,
        "SELECT tenant_id, aoer_score, metrics ->> 'modelVersion' AS version FROM aoer_summary"
        " WHERE tenant_id = ANY (%s)",
        tenants,
    )
    return {r["tenant_id"]: (r["aoer_score"], r["version"]) for r in found}


async def test_known_weights_are_recovered_promoted_requeued_and_scored(
    conn: Connection, pool: Pool, db_url: str, make_tenant: MakeTenant
) -> None:
    tenants = await seed(conn, outcome="linear")
    dormant = await make_tenant("Dormant Motors", active=False)
    await session_of(conn).scores.recompute([*tenants, dormant])

    run = await model.train(session_of(conn), POLICY, trigger="cli", by=CLI)

    result = run.evaluation
    assert (result.decision, run.challenger_version, run.result_version) == ("promoted", "v2", "v2")
    assert result.challenger is not None
    for component in COMPONENTS:
        got = getattr(result.challenger, component)
        assert abs(got - Decimal(str(TRUE_WEIGHTS[component]))) <= WEIGHT_TOLERANCE, component
    assert sum(getattr(result.challenger, c) for c in COMPONENTS) == 1
    assert abs(result.challenger.intercept) <= INTERCEPT_TOLERANCE
    assert result.champion_metrics is not None
    assert result.challenger_metrics is not None
    assert result.challenger_metrics.rmse < result.champion_metrics.rmse * 0.5
    assert result.challenger_metrics.r2 is not None
    assert result.challenger_metrics.r2 > 0.9
    assert (result.train_rows, result.holdout_rows) == (760, 140)
    assert (result.train_tenants, result.holdout_tenants) == (10, 10)

    weights = {r["version"]: r for r in await rows(conn, "SELECT * FROM model_weights")}
    assert weights["v2"]["status"] == "champion"
    assert weights["v1"]["status"] == "retired"
    assert weights["v2"]["previous_version"] == "v1"
    assert weights["v2"]["holdout_from"] == run.window.as_of - timedelta(days=13)
    assert weights["v2"]["holdout_to"] == run.window.as_of
    assert weights["v2"]["train_to"] == run.window.as_of - timedelta(days=14)
    assert weights["v2"]["holdout_rmse"] == result.challenger_metrics.rmse
    assert weights["v2"]["fit"]["dataSha256"] == result.details["dataSha256"]

    # Every active tenant is re-queued at low priority, in the same transaction.
    queued = await rows(conn, "SELECT tenant_id, priority FROM aoer_queue WHERE status = 'queued'")
    assert run.requeued == len(tenants)
    assert sorted(q["tenant_id"] for q in queued) == sorted(tenants)
    assert {q["priority"] for q in queued} == {"low"}

    [audit] = await rows(conn, "SELECT * FROM model_audit")
    assert audit["id"] == UUID(cast(str, run.audit_id))
    assert (audit["kind"], audit["trigger"], audit["decision"]) == ("train", "cli", "promoted")
    assert (audit["champion_version"], audit["challenger_version"]) == ("v1", "v2")
    assert audit["result_version"] == "v2"
    assert audit["requeued"] == len(tenants)
    assert audit["champion_rmse"] == result.champion_metrics.rmse
    assert audit["challenger_r2"] == result.challenger_metrics.r2
    assert audit["settings"]["holdout_days"] == POLICY.holdout_days

    await drain(pool, db_url)
    after = await scores(conn, tenants)
    for tenant in tenants:
        score, version = after[tenant]
        assert version == "v2"
        assert score == await expected_score(conn, tenant, "v2"), tenant
    [metrics] = await rows(
        conn, "SELECT metrics FROM aoer_summary WHERE tenant_id = %s", tenants[0]
    )
    assert {"avgSEO", "avgGeolocal"} <= set(metrics["metrics"])
    events = await rows(
        conn,
        "SELECT count(*) AS n FROM metrics_events"
        " WHERE event_data -> 'metrics' ->> 'modelVersion' = 'v2'",
    )
    assert events == [{"n": len(tenants)}]


async def test_pure_noise_outcomes_are_recorded_but_not_promoted(conn: Connection) -> None:
    await seed(conn, outcome="noise")

    run = await model.train(session_of(conn), POLICY, trigger="cli", by=CLI)

    assert run.evaluation.decision == "rejected"
    assert "R²" in run.evaluation.reason
    assert "AOER_MODEL_MIN_R2" in run.evaluation.reason
    weights = {r["version"]: r for r in await rows(conn, "SELECT * FROM model_weights")}
    assert weights["v1"]["status"] == "champion"
    assert weights["v2"]["status"] == "retired"
    assert weights["v2"]["retired_at"] is not None
    [audit] = await rows(conn, "SELECT * FROM model_audit")
    assert (audit["decision"], audit["challenger_version"]) == ("rejected", "v2")
    assert audit["result_version"] == "v1"
    assert audit["requeued"] == 0
    assert audit["reason"] == run.evaluation.reason
    assert audit["challenger_r2"] < 0  # the held-out days show no signal at all
    assert await rows(conn, "SELECT id FROM aoer_queue") == []


async def test_too_little_data_trains_nothing_and_says_why(conn: Connection) -> None:
    await seed(conn, tenants=2, days=20)

    run = await model.train(session_of(conn), POLICY, trigger="cli", by=CLI)

    reason = run.evaluation.reason
    assert run.evaluation.decision == "skipped"
    assert run.challenger_version is None
    assert reason.startswith("too little data to train:")
    assert "12 training rows (needs 300, AOER_MODEL_MIN_ROWS)" in reason
    assert "2 tenants in training (needs 5, AOER_MODEL_MIN_TENANTS)" in reason
    assert await rows(conn, "SELECT version FROM model_weights") == [{"version": "v1"}]
    [audit] = await rows(conn, "SELECT decision, reason, train_rows FROM model_audit")
    assert audit == {"decision": "skipped", "reason": reason, "train_rows": 12}
    assert await rows(conn, "SELECT id FROM aoer_queue") == []


async def test_rollback_restores_the_previous_champion_and_its_scores(
    conn: Connection, pool: Pool, db_url: str
) -> None:
    tenants = await seed(conn, outcome="linear")
    await session_of(conn).scores.recompute(tenants)
    v1_scores = await scores(conn, tenants)
    assert {version for _, version in v1_scores.values()} == {"v1"}
    await model.train(session_of(conn), POLICY, trigger="cli", by=CLI)
    await drain(pool, db_url)
    v2_scores = await scores(conn, tenants)
    assert v2_scores != v1_scores

    done = await model.rollback(session_of(conn), trigger="cli", by=CLI)

    assert (done.from_version, done.to_version, done.requeued) == ("v2", "v1", len(tenants))
    statuses = await rows(conn, "SELECT version, status FROM model_weights ORDER BY version")
    assert statuses == [
        {"version": "v1", "status": "champion"},
        {"version": "v2", "status": "retired"},
    ]
    await drain(pool, db_url)
    assert await scores(conn, tenants) == v1_scores
    audit = await rows(
        conn,
        "SELECT kind, decision, champion_version, result_version"
        " FROM model_audit WHERE kind = 'rollback'",
    )
    assert audit == [
        {
            "kind": "rollback",
            "decision": "rolled_back",
            "champion_version": "v2",
            "result_version": "v1",
        }
    ]
    with pytest.raises(model.NothingToRollBack, match="v1 did not replace"):
        await model.rollback(session_of(conn), trigger="cli", by=CLI)


async def test_a_rollback_pins_the_champion_until_unpinned(conn: Connection) -> None:
    """The next training after a rollback fits the same data again: it used to promote the
    model just rolled back. Now it records the challenger and holds it, with why, until the
    champion is unpinned; then a run promotes again."""
    await seed(conn, outcome="linear")
    assert (
        await model.train(session_of(conn), POLICY, trigger="cli", by=CLI)
    ).result_version == "v2"
    await model.rollback(session_of(conn), trigger="cli", by=CLI)
    champion = (await model.model_status(session_of(conn))).champion
    assert (champion.version, champion.pinned_by) == ("v1", CLI.subject)
    assert champion.pinned_at is not None

    again = await model.train(session_of(conn), POLICY, trigger="schedule", by=CLI)

    assert again.evaluation.decision == "held"
    assert (again.challenger_version, again.result_version, again.requeued) == ("v3", "v1", 0)
    assert f"held: v1 is pinned since its rollback by {CLI.subject} at " in again.evaluation.reason
    assert again.evaluation.reason.endswith("(`aoer model unpin` lets training promote again)")
    statuses = await rows(conn, "SELECT version, status FROM model_weights ORDER BY version")
    assert [r["status"] for r in statuses] == ["champion", "retired", "retired"]
    [audit] = await rows(
        conn, "SELECT decision, reason FROM model_audit WHERE challenger_version = 'v3'"
    )
    assert audit == {"decision": "held", "reason": again.evaluation.reason}

    unpinned = await model.unpin(session_of(conn), by=CLI)
    assert unpinned.version == "v1"
    [trail] = await rows(
        conn, "SELECT action, target, details FROM audit_log WHERE action = 'model.unpin'"
    )
    assert trail["target"] == "v1"
    assert trail["details"]["pinnedBy"] == CLI.subject
    with pytest.raises(model.NotPinned, match="the champion v1 is not pinned"):
        await model.unpin(session_of(conn), by=CLI)
    promoted = await model.train(session_of(conn), POLICY, trigger="schedule", by=CLI)
    assert (promoted.evaluation.decision, promoted.result_version) == ("promoted", "v4")
    assert (await model.model_status(session_of(conn))).champion.pinned_at is None


async def test_dry_run_writes_nothing_and_repeats_exactly(conn: Connection) -> None:
    await seed(conn, outcome="linear")

    dry = await model.train(session_of(conn), POLICY, trigger="cli", by=CLI, dry_run=True)

    assert dry.evaluation.decision == "promoted"
    assert dry.audit_id is None
    assert await rows(conn, "SELECT version FROM model_weights") == [{"version": "v1"}]
    assert await rows(conn, "SELECT id FROM model_audit") == []
    assert await rows(conn, "SELECT id FROM aoer_queue") == []
    # Same as-of date and data: the real run fits the same weights on the same checksum.
    real = await model.train(
        session_of(conn), POLICY, trigger="cli", by=CLI, as_of=dry.window.as_of
    )
    assert real.evaluation.challenger == dry.evaluation.challenger
    assert real.evaluation.details["dataSha256"] == dry.evaluation.details["dataSha256"]


async def test_an_as_of_date_in_the_future_or_before_any_history_is_refused(
    conn: Connection,
) -> None:
    cur = await conn.execute("SELECT current_date + 1 AS tomorrow")
    tomorrow = (await cur.fetchone() or {})["tomorrow"]
    with pytest.raises(InvalidInput, match="in the future"):
        await model.train(session_of(conn), POLICY, trigger="cli", by=CLI, as_of=tomorrow)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="leaves no room"):
        await model.train(session_of(conn), POLICY, trigger="cli", by=CLI, as_of=date(1, 1, 5))


@pytest.mark.parametrize(("intercept", "expected"), [("100", "100.00"), ("-100", "0.00")])
async def test_scores_stay_on_0_to_100_whatever_the_champion(
    conn: Connection, intercept: str, expected: str
) -> None:
    tenants = await seed(conn, tenants=2, days=10)
    await conn.execute(
        "INSERT INTO model_weights (version, status, seo, aeo, geo, ugc, geolocal, intercept)"
        " VALUES ('v2', 'retired', 0, 1, 0, 0, 0, %s)",
        (intercept,),
    )
    async with conn.transaction():
        await conn.execute("UPDATE model_weights SET status = 'retired' WHERE version = 'v1'")
        await conn.execute("UPDATE model_weights SET status = 'champion' WHERE version = 'v2'")

    stored = await session_of(conn).scores.recompute(tenants)

    assert {s.aoer_score for s in stored} == {Decimal(expected)}
    assert {s.metrics["modelVersion"] for s in stored} == {"v2"}


async def test_the_schema_allows_one_champion_only(conn: Connection) -> None:
    await conn.execute(
        "INSERT INTO model_weights (version, status, seo, aeo, geo, ugc, geolocal)"
        " VALUES ('v2', 'challenger', 0.2, 0.2, 0.2, 0.2, 0.2)"
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        await conn.execute("UPDATE model_weights SET status = 'champion' WHERE version = 'v2'")
    with pytest.raises(psycopg.errors.CheckViolation):
        await conn.execute(
            "INSERT INTO model_weights (version, status, seo, aeo, geo, ugc, geolocal)"
            " VALUES ('v3', 'retired', 0.5, 0.5, 0.5, 0, 0)"
        )


@pytest.mark.parametrize("change", ["promotion", "weekly promotion", "rollback"])
async def test_a_tenant_claimed_during_the_change_is_scored_again_with_the_new_champion(
    conn: Connection, pool: Pool, db_url: str, owner_db_url: str, change: str
) -> None:
    tenants = await seed(conn, outcome="linear")
    if change == "rollback":
        await model.train(session_of(conn), POLICY, trigger="cli", by=CLI)
        await drain(pool, db_url)
    new_champion = "v1" if change == "rollback" else "v2"
    await session_of(conn).jobs.enqueue(tenants, "medium")
    worker, changer = await connect(db_url), await connect(db_url)
    holder = await connect(owner_db_url)
    claimed, claim_may_commit = asyncio.Event(), asyncio.Event()
    audit_locked, audit_may_unlock = asyncio.Event(), asyncio.Event()

    async def claim_one() -> list[ClaimedJob]:
        # A worker claims tenant X's waiting job; its claim commits only when told.
        async with worker.transaction():
            jobs = await session_of(worker).jobs.claim("old-worker", 1)
            claimed.set()
            await claim_may_commit.wait()
        return jobs

    async def hold_model_audit() -> None:
        # Stops the change between its re-queue and its commit (its model_audit insert),
        # for less than the 2 s lock timeout its re-queue leaves on its transaction.
        async with holder.transaction():
            await holder.execute("LOCK TABLE model_audit IN SHARE MODE")
            audit_locked.set()
            await audit_may_unlock.wait()

    async def make_change() -> None:
        if change == "promotion":
            await model.train(session_of(changer), POLICY, trigger="cli", by=CLI)
        elif change == "weekly promotion":  # inside the transaction that claims the tick
            job, now = weekly_training(), MONDAY_4AM + timedelta(hours=1)
            assert await fire_if_due(session_of(changer), job, "scheduler-a", now) is not None
        else:
            await model.rollback(session_of(changer), trigger="cli", by=CLI)

    try:
        claiming = asyncio.create_task(claim_one())
        await claimed.wait()
        holding = asyncio.create_task(hold_model_audit())
        await audit_locked.wait()
        changing = asyncio.create_task(make_change())
        await lock_waits(conn, 1)  # the change re-queued everyone and waits to commit

        claim_may_commit.set()
        [job] = await claiming
        await process_batch(session_of(worker), "old-worker", [job])
        [(_, scored_with)] = (await scores(conn, [job.tenant_id])).values()
        assert scored_with != new_champion  # the change is not committed yet
        audit_may_unlock.set()
        await holding
        await asyncio.wait_for(changing, 30)
    finally:
        claim_may_commit.set()
        audit_may_unlock.set()
        for c in (worker, changer, holder):
            await c.close()

    await drain(pool, db_url)
    after = await scores(conn, tenants)
    assert {tenant: version for tenant, (_, version) in after.items()} == dict.fromkeys(
        tenants, new_champion
    )


@pytest.mark.parametrize("champion", ["v1", "a champion weighing seo"])
async def test_a_component_that_stopped_arriving_does_not_stall_training(
    conn: Connection, champion: str
) -> None:
    await seed(conn, days=194)  # the default window: 180 training days and 14 held out
    # Every dealership stopped sending seo 20 days ago.
    await conn.execute("UPDATE aiv_raw_signals SET seo = NULL WHERE date > current_date - 20")
    if champion != "v1":
        await conn.execute(
            "INSERT INTO model_weights (version, status, seo, aeo, geo, ugc, geolocal)"
            " VALUES ('v2', 'retired', 0.3, 0.3, 0.2, 0.2, 0)"
        )
        async with conn.transaction():
            await conn.execute("UPDATE model_weights SET status = 'retired' WHERE version = 'v1'")
            await conn.execute("UPDATE model_weights SET status = 'champion' WHERE version = 'v2'")

    run = await model.train(session_of(conn), Policy(), trigger="cli", by=CLI)

    result = run.evaluation
    assert result.decision != "skipped", result.reason
    assert "seo" not in result.components
    assert (result.holdout_rows, result.holdout_tenants) == (140, 10)
    assert result.challenger is not None
    assert result.challenger.seo == 0


async def test_the_sums_the_database_computes_judge_as_the_rows_themselves_would(
    conn: Connection,
) -> None:
    await seed(conn, days=90)
    # Some components missing here and there, one stopped arriving: the groups must add up.
    await conn.execute("UPDATE aiv_raw_signals SET geo = NULL WHERE extract(day FROM date) = 3")
    await conn.execute("UPDATE aiv_raw_signals SET seo = NULL WHERE date > current_date - 20")
    window = Window.ending(await session_of(conn).models.today(), POLICY)
    cur = await conn.execute(
        "SELECT date >= %s AS holdout, dealer_id, seo::float8, aeo::float8, geo::float8,"
        " ugc::float8, geolocal::float8, observed_aiv::float8 FROM aiv_raw_signals"
        " WHERE date BETWEEN %s AND %s AND observed_aiv IS NOT NULL",
        (window.holdout_from, window.train_from, window.holdout_to),
    )
    found = await cur.fetchall()
    dealers = {d: i for i, d in enumerate(sorted({r["dealer_id"] for r in found}))}
    rows = in_memory.Dataset(
        holdout=np.array([r["holdout"] for r in found], dtype=np.bool_),
        tenant=np.array([dealers[r["dealer_id"]] for r in found], dtype=np.int64),
        features=np.array(
            [[np.nan if r[c] is None else r[c] for c in COMPONENTS] for r in found],
            dtype=np.float64,
        ),
        outcome=np.array([r["observed_aiv"] for r in found], dtype=np.float64),
    )

    sums = await evaluate(session_of(conn).models.window_data(window), V1_WEIGHTS, POLICY)
    reference = await evaluate(rows, V1_WEIGHTS, POLICY)

    assert sums.decision == reference.decision == "promoted"
    assert sums.components == reference.components == ("aeo", "geo", "ugc", "geolocal")
    assert sums.challenger == reference.challenger
    counts = ("train_rows", "holdout_rows", "train_tenants", "holdout_tenants", "dropped_rows")
    assert [getattr(sums, c) for c in counts] == [getattr(reference, c) for c in counts]
    for side in ("champion_metrics", "challenger_metrics"):
        ours, theirs = getattr(sums, side), getattr(reference, side)
        assert ours.rmse == pytest.approx(theirs.rmse, rel=1e-12)
        assert ours.mae == pytest.approx(theirs.mae, rel=1e-12)
        assert ours.r2 == pytest.approx(theirs.r2, rel=1e-12)
