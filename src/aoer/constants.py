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
SAFETY_POLL_S: Final = 5.0  # NOTIFY only wakes; this poll guarantees progress if one is lost
LEASE_RENEWALS_PER_LEASE: Final = 3
LEASE_CHECK_MAX_S: Final = 2.5  # renew and reclaim at least this often, whatever the lease
# A lease must have expired this long ago before another worker takes its jobs back, so a
# live worker whose renewal was briefly delayed (a busy CPU) keeps them. A dead worker's jobs
# are back within lease + grace + one check: 35 s with the default 30 s lease.
RECLAIM_GRACE_S: Final = 2.5

# NOTIFY channels
QUEUE_CHANNEL: Final = "aoer_queue"
SUMMARY_CHANNEL: Final = "aoer_summary_updated"
ALERT_CHANNEL: Final = "aoer_alerts"  # payload: new alert ids (comma-separated)

# Scoring
SCORE_WINDOW_DAYS: Final = 30
RECOMPUTE_EVENT: Final = "aoer_recompute"

# Scheduler tick names (rows of aoer_cron_ticks)
RECOMPUTE_TICK: Final = "recompute"
RETENTION_TICK: Final = "retention"
MODEL_TICK: Final = "model_train"  # weekly training of the score's weights (DESIGN §9)
RETENTION_CRON: Final = "17 3 * * *"
RETENTION_BATCH_ROWS: Final = 5000

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
