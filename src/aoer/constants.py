"""Every magic value of the orchestrator, named once with its unit."""

import datetime as dt
from typing import Final, get_args

from aoer.types import JobStatus, Priority

# Queue
PRIORITIES: Final[tuple[Priority, ...]] = get_args(Priority)  # lowest first
JOB_STATUSES: Final[tuple[JobStatus, ...]] = get_args(JobStatus)
DEFAULT_MAX_RETRIES: Final = 3  # attempts per job (AOER_MAX_RETRIES)
DEFAULT_LEASE_S: Final = 30.0  # AOER_LEASE_SECONDS
DEFAULT_BATCH_SIZE: Final = 1000  # jobs per claim (AOER_BATCH_SIZE)
RECLAIM_LIMIT: Final = 10_000  # expired jobs taken back per statement
DEFAULT_PRIORITY: Final[Priority] = "medium"
CRON_PRIORITY: Final[Priority] = "low"
BACKOFF_BASE_S: Final = 60.0
BACKOFF_CAP_S: Final = 3600.0
BACKOFF_JITTER: Final = 0.25  # each delay is stretched by a random 0-25 %
# The most urgent jobs a worker's urgent lane claims at once (the claim's cap for a batch led
# by an urgent job: jobs.sql, claim_jobs).
URGENT_LANE_BATCH: Final = 100
SAFETY_POLL_S: Final = 5.0  # NOTIFY only wakes; this poll guarantees progress if one is lost
LEASE_RENEWALS_PER_LEASE: Final = 3
LEASE_CHECK_MAX_S: Final = 2.5  # renew and reclaim at least this often, whatever the lease
# A lease must have expired this long ago before another worker takes its jobs back, so a
# live worker whose renewal was briefly delayed (a busy CPU) keeps them. A dead worker's jobs
# are back within lease + grace + one check: 35 s with the default 30 s lease.
RECLAIM_GRACE_S: Final = 2.5
# A job of a worker that still heartbeats is taken back only this long past its lease (its
# batch waits on a lock, which renewal cannot reach; jobs.sql, reclaim_expired)
RECLAIM_LIVE_GRACE_S: Final = 600.0

# NOTIFY channels
QUEUE_CHANNEL: Final = "aoer_queue"
# The payload of a queue NOTIFY that changes job states but queues nothing due (a failed
# attempt: retried after its backoff, or failed for good): the API's live streams refresh
# their queue status; workers, with nothing new to claim, ignore it.
QUEUE_SETTLED: Final = "settled"
SUMMARY_CHANNEL: Final = "aoer_summary_updated"
# Pause and resume (payload "paused" / "resumed"): workers stop claiming, or wake at once.
QUEUE_CONTROL_CHANNEL: Final = "aoer_queue_control"

# Operator console (DESIGN §15)
WORKER_HEARTBEAT_S: Final = 3.0  # each worker upserts its aoer_workers row this often
WORKER_STALE_S: Final = 15.0  # no heartbeat for this long: the worker is shown as gone
WORKER_FORGET_S: Final = 86_400.0  # retention deletes rows of workers gone this long
CONSOLE_CHART_HOURS: Final = 24  # throughput and latency charts cover this many hours

# payload: new alert ids (comma-separated); aoer_raise_alerts (migration 0032) spells it too
ALERT_CHANNEL: Final = "aoer_alerts"

# Scoring
SCORE_WINDOW_DAYS: Final = 30
RECOMPUTE_EVENT: Final = "aoer_recompute"
# Recommendations (DESIGN §13): an organisation's medians are the benchmark once it has this
# many dealerships with data (else the fleet's); the snapshot is refreshed on MEDIANS_CRON.
MEDIAN_MIN_PEERS: Final = 3
# How far back the summary's `lastMove` looks for the last recompute that changed the score.
LAST_MOVE_DAYS: Final = 30
NO_DATA: Final = "No data"  # grade and risk level of a summary with no signal in the window

# Scheduler tick names (rows of aoer_cron_ticks)
RECOMPUTE_TICK: Final = "recompute"
RETENTION_TICK: Final = "retention"
MODEL_TICK: Final = "model_train"  # weekly training of the score's weights (DESIGN §9)
RETENTION_CRON: Final = "17 3 * * *"
MEDIANS_TICK: Final = "component_medians"
MEDIANS_CRON: Final = "*/15 * * * *"
RETENTION_BATCH_ROWS: Final = 5000
# The recompute tick queues the fleet in chunks of this many tenants (AOER_TICK_CHUNK).
DEFAULT_TICK_CHUNK: Final = 20_000
# The tick's first chunk is smaller, so the first jobs commit within a few worker batches.
FIRST_TICK_CHUNK: Final = 2_000
# The daily retention tick keeps this many monthly partitions ready beyond the current month.
PARTITION_MONTHS_AHEAD: Final = 3

# Signals
SIGNAL_COLUMNS: Final = (
    "dealer_id",
    "date",
    "seo",
    "aeo",
    "geo",
    "ugc",
    "geolocal",
    "observed_aiv",
    "observed_rar",
)

# Tokens and browser sessions
TOKEN_LEEWAY_S: Final = 5  # clock skew tolerated between the minting and the verifying host
SESSION_REVOCATIONS_REFRESH_S: Final = 2.0  # every API process reloads revoked sessions this often
# A process whose revocation list is older than this (its database unreachable) refuses
# session cookies with a 503 rather than honour one that may have been signed out.
SESSION_REVOCATIONS_STALE_S: Final = 10.0
# API keys (DESIGN §12): a revoked key is refused by every API process within 5 s. Each
# process reloads the revocations of the keys it knows this often, and refuses keys (503)
# once its list is older than the stale bound, so the 5 s hold even while reloads fail.
API_KEY_REFRESH_S: Final = 1.0
API_KEY_STALE_S: Final = 4.0
API_KEY_TOUCH_S: Final = 60.0  # lastUsedAt is written at most this often per key
API_KEY_PREFIX: Final = "aoer_"  # a bearer credential starting with this is an API key
API_KEY_RANDOM_BYTES: Final = 32  # secrets.token_urlsafe(32): 43 URL-safe characters
API_KEY_SHOWN_PREFIX: Final = 12  # characters of a key kept to tell keys apart ("aoer_AbCdEfG")

# Signals start here: an earlier date is a typo (a year 1 or 1900 from a spreadsheet), not data.
MIN_SIGNAL_DATE: Final = dt.date(2000, 1, 1)
MAX_IMPORT_ERRORS_PRINTED: Final = 1000  # a file with every row wrong still prints a sane list

# Alerts (DESIGN §13)
ALERT_KINDS: Final = ("risk_level_up", "grade_down", "score_drop", "stale_data", "job_failed")
ALERT_EVENT_PREFIX: Final = "alert."  # a webhook's `type` is alert.<kind>
ALERT_RETRY_WINDOW_S: Final = 86_400.0  # deliveries retried for up to 24 h, then `failed`
ALERT_RETRY_BASE_S: Final = 10.0  # first retry delay; doubles per attempt, capped
ALERT_RETRY_CAP_S: Final = 7200.0
ALERT_LEASE_S: Final = 60.0  # a claimed delivery is another worker's again after this
ALERT_HTTP_TIMEOUT_S: Final = 10.0  # connect + read, per webhook request
ALERT_SMTP_TIMEOUT_S: Final = 20.0
ALERT_CLAIM_BATCH: Final = 20  # deliveries claimed per round
ALERT_MAX_IN_FLIGHT: Final = 16  # requests in flight per worker process
ALERT_POLL_S: Final = 5.0  # safety poll behind the aoer_alerts NOTIFY
