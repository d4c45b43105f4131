"""The queue's policy values, carried by the store so no caller threads them through."""

from dataclasses import dataclass

from aoer.constants import DEFAULT_BATCH_SIZE, DEFAULT_LEASE_S, DEFAULT_MAX_RETRIES


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    max_retries: int = DEFAULT_MAX_RETRIES  # attempts before a job ends `failed`
    lease_s: float = DEFAULT_LEASE_S  # how long a claim holds without renewal
    batch_size: int = DEFAULT_BATCH_SIZE  # jobs per claim
