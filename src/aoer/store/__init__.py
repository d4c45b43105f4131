"""The store layer: the only code that executes SQL (named queries in `aoer/db/sql`).

Above it, `queue`, `scoring`, `worker`, `api` and `dashboard` speak in the project's types;
below it, `db` holds the pool, the embedded server and the migrations.
"""

from aoer.store.policy import QueuePolicy
from aoer.store.store import Notification, Scope, Session, Store

__all__ = ["Notification", "QueuePolicy", "Scope", "Session", "Store"]
