"""`aoer model`: train, inspect and roll back the score's weights (DESIGN §9)."""

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from aoer.bootstrap import open_services
from aoer.cli.runner import JsonOutput, cli_actor, console, emit_json, run_command, show
from aoer.config import Settings
from aoer.scoring import model
from aoer.store.models import ModelVersion
from aoer.training import COMPONENTS, Metrics, Weights

model_app = typer.Typer(
    help="The self-improving score: train, status, rollback, unpin", no_args_is_help=True
)


def _weights(weights: Weights) -> str:
    parts = [f"{c} {getattr(weights, c)}" for c in COMPONENTS]
    return ", ".join([*parts, f"intercept {weights.intercept}"])


def _metric(metrics: Metrics | None, name: str) -> str:
    if metrics is None:
        return "-"
    value = getattr(metrics, name)
    return "-" if value is None else f"{value:.3f}"


@model_app.command("train")
def train(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Fit and judge, but write nothing")
    ] = False,
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="End the split on this date"),
    ] = None,
) -> None:
    """Fit a challenger on older days, judge it on the held-out days, promote if clearly better."""

    async def main(settings: Settings) -> model.TrainingRun:
        async with open_services(settings) as services, services.store.session() as session:
            return await model.train(
                session,
                model.policy_from_settings(settings),
                trigger="cli",
                by=model.Actor(cli_actor(), "admin"),
                as_of=as_of.date() if as_of else None,
                dry_run=dry_run,
            )

    run = run_command(main)
    result, window = run.evaluation, run.window
    table = Table(title="model training" + (" (dry run: nothing written)" if dry_run else ""))
    table.add_column("", style="bold")
    table.add_column(f"champion {run.champion_version}", justify="right")
    table.add_column(f"challenger {run.challenger_version or ''}".strip(), justify="right")
    for name in ("rmse", "mae", "r2"):
        table.add_row(
            f"held-out {name.upper().replace('R2', 'R²')}",
            _metric(result.champion_metrics, name),
            _metric(result.challenger_metrics, name),
        )
    show(table)
    console.print(
        f"train {window.train_from} → {window.train_to}: {result.train_rows} rows, "
        f"{result.train_tenants} tenants; held out {window.holdout_from} → "
        f"{window.holdout_to}: {result.holdout_rows} rows, {result.holdout_tenants} tenants; "
        f"components {', '.join(result.components) or '-'}"
    )
    if result.challenger:
        console.print(f"challenger weights: {_weights(result.challenger)}")
    console.print(Text(result.decision, style="bold") + Text(f": {result.reason}"), highlight=False)
    if run.requeued:
        console.print(f"queued {run.requeued} tenants for recompute with {run.result_version}")


@model_app.command("status")
def status(
    runs: Annotated[int, typer.Option(help="How many recent runs to list")] = 10,
    as_json: JsonOutput = False,
) -> None:
    """The champion model and the latest training runs and rollbacks."""

    async def main(settings: Settings) -> model.ModelStatus:
        async with open_services(settings) as services, services.store.session() as session:
            return await model.model_status(session, runs=runs)

    state = run_command(main)
    if as_json:
        emit_json({"champion": asdict(state.champion), "runs": [asdict(r) for r in state.runs]})
        return
    champion = state.champion
    table = Table(title=f"champion {champion.version}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("weights", _weights(champion.weights))
    promoted = champion.promoted_at
    table.add_row("promoted", promoted.strftime("%Y-%m-%d %H:%M UTC") if promoted else "-")
    table.add_row("replaced", champion.previous_version or "-")
    if champion.pinned_at is not None:
        table.add_row(
            "pinned",
            f"since {champion.pinned_at.strftime('%Y-%m-%d %H:%M UTC')} by {champion.pinned_by}"
            " (a rollback): training promotes nothing over it until `aoer model unpin`",
        )
    if champion.as_of:
        table.add_row(
            "trained",
            f"as of {champion.as_of} on {champion.train_rows} rows of {champion.tenants} tenants",
        )
        table.add_row(
            "held out",
            f"{champion.holdout_from} → {champion.holdout_to}: {champion.holdout_rows} rows, "
            f"RMSE {_metric(champion.holdout, 'rmse')}, MAE {_metric(champion.holdout, 'mae')}, "
            f"R² {_metric(champion.holdout, 'r2')}",
        )
    show(table)
    history = Table(title="recent runs")
    for column in ("when", "kind", "by", "champion", "challenger", "RMSE", "R²", "decision"):
        history.add_column(column)
    history.add_column("reason", overflow="fold")
    for entry in state.runs:
        history.add_row(
            entry.created_at.strftime("%Y-%m-%d %H:%M"),
            entry.kind,
            entry.trigger,
            f"{entry.champion_version} → {entry.result_version}",
            entry.challenger_version or "-",
            f"{_metric(entry.champion, 'rmse')} / {_metric(entry.challenger, 'rmse')}",
            _metric(entry.challenger, "r2"),
            entry.decision,
            entry.reason,
        )
    show(history)


@model_app.command("rollback")
def rollback() -> None:
    """Restore the champion the current one replaced and re-queue every tenant."""

    async def main(settings: Settings) -> model.Rollback:
        async with open_services(settings) as services, services.store.session() as session:
            return await model.rollback(
                session, trigger="cli", by=model.Actor(cli_actor(), "admin")
            )

    done = run_command(main)
    console.print(
        f"rolled back from {done.from_version} to {done.to_version}; "
        f"queued {done.requeued} tenants for recompute"
    )
    console.print(
        f"{done.to_version} is pinned: training still runs, but promotes nothing over it"
        " until `aoer model unpin`"
    )


@model_app.command("unpin")
def unpin() -> None:
    """Let training promote over the champion again, after a rollback pinned it."""

    async def main(settings: Settings) -> ModelVersion:
        async with open_services(settings) as services, services.store.session() as session:
            return await model.unpin(session, by=model.Actor(cli_actor(), "admin"))

    champion = run_command(main)
    console.print(f"{champion.version} unpinned: the next training may promote over it")
