"""Settings, read once from the environment (and `.env`) and passed down."""

from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aoer.constants import (
    ALERT_HTTP_TIMEOUT_S,
    ALERT_LEASE_S,
    ALERT_MAX_IN_FLIGHT,
    ALERT_RETRY_BASE_S,
    ALERT_RETRY_WINDOW_S,
    DEFAULT_BATCH_SIZE,
    DEFAULT_LEASE_S,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TICK_CHUNK,
    SAFETY_POLL_S,
)


class Settings(BaseSettings):
    """Everything configurable, named as in DESIGN §10."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", protected_namespaces=())

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    home: Path = Field(default=Path(".aoer"), alias="AOER_HOME")
    jwt_secret: str | None = Field(default=None, alias="AOER_JWT_SECRET")
    cron_secret: str | None = Field(default=None, alias="CRON_SECRET")
    cron: str = Field(default="0 */6 * * *", alias="AOER_CRON")
    run_cron: bool = Field(default=True, validation_alias=AliasChoices("AOER_RUN_CRON", "RUN_CRON"))
    # The recompute tick queues the fleet in chunks of this many tenants, each committed on
    # its own, so workers start within a chunk's time; the pause between chunks spreads it.
    tick_chunk: int = Field(default=DEFAULT_TICK_CHUNK, ge=1, le=1_000_000, alias="AOER_TICK_CHUNK")
    tick_chunk_pause_s: float = Field(
        default=0.0, ge=0, le=60, alias="AOER_TICK_CHUNK_PAUSE_SECONDS"
    )
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=50_000, alias="AOER_BATCH_SIZE")
    # Two batches in flight per worker: one's Python work and commit wait overlap the other's
    # SQL, which keeps PostgreSQL busy (bench/README.md, "Where the time goes").
    worker_concurrency: int = Field(default=2, ge=1, le=64, alias="AOER_WORKER_CONCURRENCY")
    # One more slot per worker that claims urgent jobs only: an urgent recompute starts at once
    # instead of waiting for a slot busy with a backlog's full batch (worker/loop.py).
    urgent_lane: bool = Field(default=True, alias="AOER_URGENT_LANE")
    # A refresh is background work: `aoer worker` and its database sessions run at this CPU
    # niceness (0-19; 0: the normal priority), so API requests sharing a host's cores go
    # first. The database sessions need the `prioritize` extension (migration 0022).
    worker_nice: int = Field(default=10, ge=0, le=19, alias="AOER_WORKER_NICE")
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=1, le=100, alias="AOER_MAX_RETRIES")
    lease_s: float = Field(default=DEFAULT_LEASE_S, gt=0, alias="AOER_LEASE_SECONDS")
    poll_s: float = Field(default=SAFETY_POLL_S, gt=0, alias="AOER_POLL_SECONDS")
    cache_ttl_s: float = Field(default=300.0, ge=0, alias="AOER_CACHE_TTL")
    host: str = Field(default="127.0.0.1", alias="AOER_HOST")
    port: int = Field(default=8000, ge=0, le=65535, alias="AOER_PORT")
    log_format: str = Field(default="text", alias="AOER_LOG_FORMAT")
    log_each_tenant: bool = Field(default=True, alias="AOER_LOG_EACH_TENANT")
    worker_metrics_port: int | None = Field(
        default=None, ge=0, le=65535, alias="AOER_WORKER_METRICS_PORT"
    )
    pool_size: int = Field(default=10, ge=1, alias="AOER_POOL_SIZE")
    # How long a worker or API process waits for an unreachable database: at start (retrying
    # with backoff, each attempt logged) and for a batch hit by a passing database error.
    connect_timeout_s: float = Field(default=300.0, gt=0, alias="AOER_CONNECT_TIMEOUT")
    # `aoer up` exits with one message when its (external) database stays unreachable this
    # long; an embedded server whose process is gone ends it at once.
    database_lost_s: float = Field(default=30.0, gt=0, alias="AOER_DATABASE_LOST_SECONDS")
    # /metrics serves a snapshot: the queue is read (and the body rendered) at most once per
    # interval however many clients scrape (0: on every scrape). A token closes the endpoint.
    metrics_refresh_s: float = Field(
        default=5.0, ge=0, le=3600, alias="AOER_METRICS_REFRESH_SECONDS"
    )
    metrics_token: str | None = Field(default=None, alias="AOER_METRICS_TOKEN")
    # Open Server-Sent Event streams per API process: per principal and in all.
    sse_max_per_principal: int = Field(default=10, ge=1, alias="AOER_SSE_MAX_PER_PRINCIPAL")
    sse_max_streams: int = Field(default=1000, ge=1, alias="AOER_SSE_MAX_STREAMS")
    retain_jobs_days: int = Field(default=7, ge=1, alias="AOER_RETAIN_JOBS_DAYS")
    retain_failures_days: int = Field(default=30, ge=1, alias="AOER_RETAIN_FAILURES_DAYS")
    retain_events_days: int = Field(default=400, ge=1, alias="AOER_RETAIN_EVENTS_DAYS")
    # The self-improving loop (DESIGN §9): weekly training and its promotion rules.
    model_schedule: bool = Field(default=True, alias="AOER_MODEL_SCHEDULE")
    model_cron: str = Field(default="0 4 * * 1", alias="AOER_MODEL_CRON")
    model_holdout_days: int = Field(default=14, ge=1, le=365, alias="AOER_MODEL_HOLDOUT_DAYS")
    model_train_days: int = Field(default=180, ge=7, le=3650, alias="AOER_MODEL_TRAIN_DAYS")
    model_min_rows: int = Field(default=500, ge=10, alias="AOER_MODEL_MIN_ROWS")
    model_min_holdout_rows: int = Field(default=100, ge=5, alias="AOER_MODEL_MIN_HOLDOUT_ROWS")
    model_min_tenants: int = Field(default=5, ge=1, alias="AOER_MODEL_MIN_TENANTS")
    model_margin: float = Field(default=0.02, ge=0, lt=1, alias="AOER_MODEL_MARGIN")
    model_min_r2: float = Field(default=0.0, le=1, alias="AOER_MODEL_MIN_R2")

    # Alerts (DESIGN §13): delivery inside every worker, retries, SMTP.
    alert_delivery: bool = Field(default=True, alias="AOER_ALERT_DELIVERY")
    alert_retry_window_s: float = Field(
        default=ALERT_RETRY_WINDOW_S, gt=0, alias="AOER_ALERT_RETRY_WINDOW_SECONDS"
    )
    alert_retry_base_s: float = Field(
        default=ALERT_RETRY_BASE_S, gt=0, alias="AOER_ALERT_RETRY_BASE_SECONDS"
    )
    alert_lease_s: float = Field(default=ALERT_LEASE_S, gt=0, alias="AOER_ALERT_LEASE_SECONDS")
    alert_http_timeout_s: float = Field(
        default=ALERT_HTTP_TIMEOUT_S, gt=0, alias="AOER_ALERT_HTTP_TIMEOUT_SECONDS"
    )
    alert_max_in_flight: int = Field(
        default=ALERT_MAX_IN_FLIGHT, ge=1, le=1000, alias="AOER_ALERT_MAX_IN_FLIGHT"
    )
    smtp_url: str | None = Field(default=None, alias="AOER_SMTP_URL")
    smtp_from: str = Field(default="aoer@localhost", alias="AOER_SMTP_FROM")
    # The dashboard's address as its users reach it (behind a proxy, a public name): the
    # link in alert e-mails, and `aoer sessions link`'s default.
    public_url: str | None = Field(default=None, alias="AOER_PUBLIC_URL")
    # An organisation's webhooks reach only public addresses and these networks (comma-
    # separated, e.g. `10.1.0.0/16,192.168.7.20`); an administrator's go anywhere.
    webhook_allowed_networks: str = Field(default="", alias="AOER_WEBHOOK_ALLOWED_NETWORKS")

    @property
    def webhook_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return parse_networks(self.webhook_allowed_networks, "AOER_WEBHOOK_ALLOWED_NETWORKS")

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        parse_networks(value, "AOER_WEBHOOK_ALLOWED_NETWORKS")  # names an entry that is not one
        return value

    @field_validator("public_url")
    @classmethod
    def _valid_public_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("AOER_PUBLIC_URL must be the dashboard's http(s) address")
        return value.rstrip("/")

    @field_validator("smtp_url")
    @classmethod
    def _valid_smtp_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("smtp://", "smtps://")):
            raise ValueError("AOER_SMTP_URL must look like smtp://user:pass@host:587 (or smtps://)")
        return value

    @model_validator(mode="after")
    def _alert_attempts_end_within_their_lease(self) -> "Settings":
        # A webhook still waiting for its answer when its lease runs out is claimed and sent
        # again by another worker (DESIGN §13: delivery is at least once, not twice at once).
        if self.alert_lease_s <= self.alert_http_timeout_s:
            raise ValueError(
                f"AOER_ALERT_LEASE_SECONDS ({self.alert_lease_s:g}) must be longer than"
                f" AOER_ALERT_HTTP_TIMEOUT_SECONDS ({self.alert_http_timeout_s:g}): a webhook"
                " still waiting for its answer when its lease ends is sent again by another"
                " worker"
            )
        return self

    @field_validator("metrics_token")
    @classmethod
    def _unset_when_empty(cls, value: str | None) -> str | None:
        return value or None  # `AOER_METRICS_TOKEN=` leaves /metrics open, as unset does

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError("AOER_LOG_FORMAT must be 'text' or 'json'")
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"AOER_CRON is not a valid cron expression: {value!r}")
        return value

    @field_validator("model_cron")
    @classmethod
    def _valid_model_cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"AOER_MODEL_CRON is not a valid cron expression: {value!r}")
        return value


def parse_networks(value: str, setting: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """`10.1.0.0/16, 192.168.7.20` as networks (a bare address is a network of one);
    ValueError naming the entry that is not one."""
    networks = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"{setting}: {entry!r} is not an address or a network such as 10.1.0.0/16"
            ) from None
    return tuple(networks)


def load_settings(**overrides: object) -> Settings:
    """Read the settings once; entry points call this and pass the result down."""
    return Settings(**overrides)  # type: ignore[arg-type]


__all__ = ["Settings", "load_settings"]
