"""`model_weights` and `model_audit`: the score's models and the trail of every run."""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, Literal
from uuid import UUID

from psycopg.rows import kwargs_row, tuple_row
from psycopg.types.json import Jsonb

from aoer.errors import InvalidInput
from aoer.store.statements import Statements
from aoer.training import (
    COMPONENTS,
    Errors,
    Evaluation,
    Group,
    Metrics,
    Moments,
    Summary,
    Weights,
    Window,
)

ModelStatusName = Literal["champion", "challenger", "retired"]
MODEL_LOCK_KEY: Final = 0x4A0E7_0005  # pg_advisory_xact_lock key of training and rollback
JSON_AUDIT_FIELDS: Final = ("settings", "details")


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
    pinned_at: datetime | None = None  # by a rollback: training promotes nothing over it
    pinned_by: str | None = None


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


@dataclass(frozen=True, slots=True)
class ModelChange:
    """A promotion or rollback: the champion changed from `champion_version` to
    `result_version` at `created_at`."""

    id: UUID
    created_at: datetime
    decision: Literal["promoted", "rolled_back"]
    champion_version: str
    result_version: str


MODEL_CHANGES_LIMIT: Final = 200  # markers per trend chart


def _metrics(row: Mapping[str, Any], prefix: str) -> Metrics | None:
    if row[f"{prefix}_rmse"] is None:
        return None
    return Metrics(row[f"{prefix}_rmse"], row[f"{prefix}_mae"], row[f"{prefix}_r2"])


def metric_fields(prefix: str, metrics: Metrics | None) -> dict[str, float | None]:
    """Audit/weights columns `<prefix>_rmse`, `_mae`, `_r2` (NULL when not measured)."""
    return {
        f"{prefix}_rmse": metrics.rmse if metrics else None,
        f"{prefix}_mae": metrics.mae if metrics else None,
        f"{prefix}_r2": metrics.r2 if metrics else None,
    }


def _version_row(**row: Any) -> ModelVersion:
    return ModelVersion(
        version=row["version"],
        status=row["status"],
        weights=Weights(**{c: row[c] for c in COMPONENTS}, intercept=row["intercept"]),
        as_of=row["as_of"],
        holdout_from=row["holdout_from"],
        holdout_to=row["holdout_to"],
        train_rows=row["train_rows"],
        holdout_rows=row["holdout_rows"],
        tenants=row["tenants"],
        holdout=_metrics(row, "holdout"),
        previous_version=row["previous_version"],
        promoted_at=row["promoted_at"],
        retired_at=row["retired_at"],
        created_at=row["created_at"],
        pinned_at=row["pinned_at"],
        pinned_by=row["pinned_by"],
    )


def _audit_row(**row: Any) -> AuditEntry:
    return AuditEntry(
        id=str(row["id"]),
        kind=row["kind"],
        trigger=row["trigger"],
        champion_version=row["champion_version"],
        challenger_version=row["challenger_version"],
        result_version=row["result_version"],
        decision=row["decision"],
        reason=row["reason"],
        holdout_from=row["holdout_from"],
        holdout_to=row["holdout_to"],
        train_rows=row["train_rows"],
        holdout_rows=row["holdout_rows"],
        champion=_metrics(row, "champion"),
        challenger=_metrics(row, "challenger"),
        requeued=row["requeued"],
        duration_ms=row["duration_ms"],
        created_at=row["created_at"],
    )


HUNDREDTHS: Final = 100  # model_training_groups sums values × 100 (numeric(5,2) as bigint)


def _group_row(**row: Any) -> tuple[Group, int]:
    """A group of model_training_groups, and its rows' fingerprint sum."""

    def exact(value: Decimal, degree: int) -> Fraction:
        return Fraction(value) / Fraction(HUNDREDTHS**degree)

    moments = Moments(
        rows=row["rows"],
        x=tuple(exact(row[c], 1) for c in COMPONENTS),
        xx=tuple(
            tuple(exact(row["_".join(sorted((a, b), key=COMPONENTS.index))], 2) for b in COMPONENTS)
            for a in COMPONENTS
        ),
        xy=tuple(exact(row[f"{c}_y"], 2) for c in COMPONENTS),
        y=exact(row["y"], 1),
        yy=exact(row["y_y"], 2),
    )
    present = tuple(bool(row[f"has_{c}"]) for c in COMPONENTS)
    return Group(bool(row["holdout"]), present, moments), int(row["fingerprint"])


def _errors_row(**row: Any) -> Errors:
    return Errors(
        rows=row["rows"],
        squared=Fraction(row["squared"]),
        absolute=Fraction(row["absolute"]),
        y=Fraction(row["y"]),
        yy=Fraction(row["yy"]),
    )


def _columns(columns: tuple[str, ...]) -> dict[str, bool]:
    return {f"use_{c}": c in columns for c in COMPONENTS}


@dataclass(frozen=True, slots=True)
class WindowData:
    """A training window's tenant-days as the trainer reads them (`training.TrainingData`):
    reduced to sums in the database, a few statements per run whatever the fleet's size."""

    models: "Models"
    window: Window

    async def summary(self) -> Summary:
        return await self.models.training_summary(self.window)

    async def tenants(self, columns: tuple[str, ...]) -> tuple[int, int]:
        return await self.models.training_tenants(self.window, columns)

    async def holdout_errors(self, weights: Weights, columns: tuple[str, ...]) -> Errors:
        return await self.models.holdout_errors(self.window, weights, columns)


class Models(Statements):
    async def lock(self) -> None:
        """Serialise training runs and rollbacks for the current transaction, which may
        wait for another run and think between statements (fitting): no pool limits."""
        await self.limit_transaction(lock_timeout_ms=0, idle_ms=0, statement_timeout_ms=0)
        await self._run("model_lock", {"key": MODEL_LOCK_KEY})

    async def today(self) -> date:
        """The database's date (UTC), the as-of date of the score and of a training run."""
        value = await self._value("model_today")
        assert isinstance(value, date)
        return value

    async def champion(self) -> ModelVersion:
        """The model the score uses now."""
        rows = await self._rows(kwargs_row(_version_row), "model_champion")
        if not rows:  # the migration seeds v1 and every swap happens in one transaction
            raise InvalidInput("no champion model: model_weights has no row with status 'champion'")
        return rows[0]

    async def changes(self, days: int) -> list[ModelChange]:
        """Promotions and rollbacks over the last `days` days, oldest first."""
        params = {"days": days, "limit": MODEL_CHANGES_LIMIT}
        return await self._all(ModelChange, "model_changes", params)

    async def recent_audit(self, limit: int) -> list[AuditEntry]:
        return await self._rows(kwargs_row(_audit_row), "model_recent_audit", {"limit": limit})

    def window_data(self, window: Window) -> WindowData:
        """`window`'s tenant-days for the trainer, read as sums in this session."""
        return WindowData(self, window)

    async def training_summary(self, window: Window) -> Summary:
        """The window's tenant-days with a known outcome as ≤ 64 groups of exact sums."""
        params = {
            "train_from": window.train_from,
            "holdout_from": window.holdout_from,
            "holdout_to": window.holdout_to,
        }
        found = await self._rows(kwargs_row(_group_row), "model_training_groups", params)
        groups = tuple(group for group, _ in found)
        rows = sum(g.moments.rows for g in groups)
        fingerprint = sum(hashes for _, hashes in found)
        checksum = hashlib.sha256(f"{rows}:{fingerprint}".encode()).hexdigest()
        return Summary(groups, checksum)

    async def training_tenants(self, window: Window, columns: tuple[str, ...]) -> tuple[int, int]:
        """Tenants with a day carrying every one of `columns`: training side, held out."""
        params = {
            "train_from": window.train_from,
            "train_to": window.train_to,
            "holdout_from": window.holdout_from,
            "holdout_to": window.holdout_to,
            **_columns(columns),
        }
        [(train, holdout)] = await self._rows(tuple_row, "model_training_tenants", params)
        return int(train), int(holdout)

    async def holdout_errors(
        self, window: Window, weights: Weights, columns: tuple[str, ...]
    ) -> Errors:
        """`weights`' errors summed over the held-out days carrying every one of `columns`."""
        params = {
            "holdout_from": window.holdout_from,
            "holdout_to": window.holdout_to,
            **{c: getattr(weights, c) for c in COMPONENTS},
            "intercept": weights.intercept,
            **_columns(columns),
        }
        [errors] = await self._rows(kwargs_row(_errors_row), "model_holdout_errors", params)
        return errors

    async def next_version(self) -> str:
        """The next free version name; the caller holds the model lock."""
        return str(await self._value("model_next_version"))

    async def insert_version(
        self, version: str, weights: Weights, window: Window, result: Evaluation
    ) -> None:
        """Record a fitted challenger (as `challenger`; a swap may crown it right after)."""
        params = {
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
        }
        await self._run("model_insert_version", params)

    async def swap_champion(
        self,
        version: str,
        *,
        previous: str | None,
        promotion: bool,
        pinned_by: str | None = None,
    ) -> None:
        """Retire the champion and crown `version` (pinned when `pinned_by` says who pins
        it); the caller's transaction makes it atomic."""
        await self._run("model_retire_champion")
        params = {
            "version": version,
            "previous_version": previous,
            "promotion": promotion,
            "pinned_by": pinned_by,
        }
        if await self._value("model_crown", params) is None:
            raise InvalidInput(f"unknown model version {version!r}")

    async def unpin(self) -> str | None:
        """Let training promote over the champion again; its version, None if not pinned."""
        value = await self._value("model_unpin")
        return None if value is None else str(value)

    async def insert_audit(self, fields: Mapping[str, object], *, rollback: bool = False) -> str:
        """One `model_audit` row for a training run (or a rollback); its id."""
        params = {k: Jsonb(v) if k in JSON_AUDIT_FIELDS else v for k, v in fields.items()}
        name = "model_insert_rollback_audit" if rollback else "model_insert_audit"
        return str(await self._value(name, params))
