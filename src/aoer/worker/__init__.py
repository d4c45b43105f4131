"""The worker: the claim/process loop, leases, wake-ups and the scheduler. No SQL of its own."""

from aoer.worker.loop import Worker

__all__ = ["Worker"]
