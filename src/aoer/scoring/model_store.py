"""The model tables at the db boundary: `model_weights` and `model_audit` rows as dataclasses."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, cast

import numpy as np
from psycopg.types.json import Jsonb

from aoer.db.pool import Connection
from aoer.db.queries import query
from aoer.errors import InvalidInput
from aoer.scoring.training import COMPONENTS, Dataset, Evaluation, Metrics, Weights, Window

ModelStatusName = Literal["champion", "challenger", "retired"]
Row = dict[str, object]


@dataclass(frozen=True, slots=True)
class ModelVersion:
    version: str
    status: ModelStatusName
    weights: Weights
    as_of: date | None
    holdout_from: date | None
    holdout_to: date | None
    train_rows: int
    holdout_rows: int
    tenants: int
    holdout: Metrics | None
    previous_version: str | None
    promoted_at: datetime | None
    retired_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    kind: Literal["train", "rollback"]
    trigger: str
    champion_version: str
    challenger_version: str | None
    result_version: str
    decision: str
    reason: str
    holdout_from: date | None
    holdout_to: date | None
    train_rows: int | None
    holdout_rows: int | None
    champion: Metrics | None
    challenger: Metrics | None
    requeued: int
    duration_ms: float
    created_at: datetime


def _metrics(row: Row, prefix: str) -> Metrics | None:
    if row[f"{prefix}_rmse"] is None:
        return None
    return Metrics(
        rmse=cast(float, row[f"{prefix}_rmse"]),
        mae=cast(float, row[f"{prefix}_mae"]),
        r2=cast(float | None, row[f"{prefix}_r2"]),
    )


def metric_fields(prefix: str, metrics: Metrics | None) -> dict[str, float | None]:
    """Audit/weights columns `<prefix>_rmse`, `_mae`, `_r2` (NULL when not measured)."""
    return {
        f"{prefix}_rmse": metrics.rmse if metrics else None,
        f"{prefix}_mae": metrics.mae if metrics else None,
        f"{prefix}_r2": metrics.r2 if metrics else None,
    }


def _version(row: Row) -> ModelVersion:
    return ModelVersion(
        version=str(row["version"]),
        status=cast(ModelStatusName, row["status"]),
        weights=Weights(
            **{c: cast(Decimal, row[c]) for c in COMPONENTS},
            intercept=cast(Decimal, row["intercept"]),
        ),
        as_of=cast(date | None, row["as_of"]),
        holdout_from=cast(date | None, row["holdout_from"]),
        holdout_to=cast(date | None, row["holdout_to"]),
        train_rows=cast(int, row["train_rows"]),
        holdout_rows=cast(int, row["holdout_rows"]),
        tenants=cast(int, row["tenants"]),
        holdout=_metrics(row, "holdout"),
        previous_version=cast(str | None, row["previous_version"]),
        promoted_at=cast(datetime | None, row["promoted_at"]),
        retired_at=cast(datetime | None, row["retired_at"]),
        created_at=cast(datetime, row["created_at"]),
    )


def _audit_entry(row: Row) -> AuditEntry:
    return AuditEntry(
        id=str(row["id"]),
        kind=cast(Literal["train", "rollback"], row["kind"]),
        trigger=str(row["trigger"]),
        champion_version=str(row["champion_version"]),
        challenger_version=cast(str | None, row["challenger_version"]),
        result_version=str(row["result_version"]),
        decision=str(row["decision"]),
        reason=str(row["reason"]),
        holdout_from=cast(date | None, row["holdout_from"]),
        holdout_to=cast(date | None, row["holdout_to"]),
        train_rows=cast(int | None, row["train_rows"]),
        holdout_rows=cast(int | None, row["holdout_rows"]),
        champion=_metrics(row, "champion"),
        challenger=_metrics(row, "challenger"),
        requeued=cast(int, row["requeued"]),
        duration_ms=cast(float, row["duration_ms"]),
        created_at=cast(datetime, row["created_at"]),
    )


async def today(conn: Connection) -> date:
    """The database's date (UTC), the as-of date of the score and of a training run."""
    cur = await conn.execute(query("model_today"))
    row = await cur.fetchone()
    assert row is not None
    return cast(date, row["today"])


async def tick_in_progress(conn: Connection, name: str) -> datetime | None:
    """The scheduler tick this transaction is firing, if any (for the audit trail)."""
    cur = await conn.execute(query("model_tick_in_progress"), {"name": name})
    row = await cur.fetchone()
    return cast(datetime, row["tick"]) if row else None


async def current_champion(conn: Connection) -> ModelVersion:
    """The model the score uses now."""
    cur = await conn.execute(query("model_champion"))
    row = await cur.fetchone()
    if row is None:  # the migration seeds v1 and every swap happens in one transaction
        raise InvalidInput("no champion model: model_weights has no row with status 'champion'")
    return _version(row)


async def get_version(conn: Connection, version: str) -> ModelVersion | None:
    cur = await conn.execute(query("model_get_version"), {"version": version})
    row = await cur.fetchone()
    return _version(row) if row else None


async def recent_audit(conn: Connection, limit: int) -> list[AuditEntry]:
    cur = await conn.execute(query("model_recent_audit"), {"limit": limit})
    return [_audit_entry(r) for r in await cur.fetchall()]


async def load_dataset(conn: Connection, window: Window) -> Dataset:
    """The window's tenant-days with a known outcome, selected and ordered in one statement."""
    cur = await conn.execute(
        query("model_training_data"),
        {
            "train_from": window.train_from,
            "holdout_from": window.holdout_from,
            "holdout_to": window.holdout_to,
        },
    )
    row = await cur.fetchone()
    assert row is not None  # an aggregate always returns one row
    columns = [np.array(row[c], dtype=np.float64) for c in COMPONENTS]  # NULL becomes NaN
    return Dataset(
        holdout=np.array(row["holdout"], dtype=np.bool_),
        tenant=np.array(row["tenant"], dtype=np.int64),
        features=np.column_stack(columns).reshape(-1, len(COMPONENTS)),
        outcome=np.array(row["observed_aiv"], dtype=np.float64),
    )


async def next_version(conn: Connection) -> str:
    """The next free version name; the caller holds the model lock."""
    cur = await conn.execute(query("model_next_version"))
    row = await cur.fetchone()
    assert row is not None
    return str(row["version"])


async def insert_version(
    conn: Connection, version: str, weights: Weights, window: Window, result: Evaluation
) -> None:
    """Record a fitted challenger (as `challenger`; a swap may crown it right after)."""
    await conn.execute(
        query("model_insert_version"),
        {
            "version": version,
            "status": "challenger" if result.decision == "promoted" else "retired",
            **{c: getattr(weights, c) for c in COMPONENTS},
            "intercept": weights.intercept,
            "as_of": window.as_of,
            "train_from": window.train_from,
            "train_to": window.train_to,
            "holdout_from": window.holdout_from,
            "holdout_to": window.holdout_to,
            "train_rows": result.train_rows,
            "holdout_rows": result.holdout_rows,
            "tenants": result.train_tenants,
            **metric_fields("holdout", result.challenger_metrics),
            "fit": Jsonb({**result.details, "components": list(result.components)}),
        },
    )


async def swap_champion(
    conn: Connection, version: str, *, previous: str | None, promotion: bool
) -> None:
    """Retire the champion and crown `version`; the caller's transaction makes it atomic."""
    await conn.execute(query("model_retire_champion"))
    cur = await conn.execute(
        query("model_crown"),
        {"version": version, "previous_version": previous, "promotion": promotion},
    )
    if await cur.fetchone() is None:
        raise InvalidInput(f"unknown model version {version!r}")


async def insert_audit(conn: Connection, fields: Row, *, rollback: bool = False) -> str:
    """One `model_audit` row for a training run (or a rollback); returns its id."""
    sql = query("model_insert_rollback_audit" if rollback else "model_insert_audit")
    cur = await conn.execute(sql, fields)
    row = await cur.fetchone()
    assert row is not None
    return str(row["id"])
