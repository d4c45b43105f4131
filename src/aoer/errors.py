"""The orchestrator's exceptions: one root, a few kinds; `aoer.api.errors` maps them to HTTP.

Driver errors never travel past the store: `aoer.store` turns them into `DatabaseError`
subclasses once, so callers tell a passing failure (`TransientDatabaseError`: the connection
was lost, a deadlock, a serialization failure, a lock or statement timeout) from the rest.
"""


class AoerError(Exception):
    """AOER Orchestrator error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class InvalidInput(AoerError):
    """The input is not valid."""


class NotFound(AoerError):
    """The object does not exist."""


class UnknownTenant(NotFound):
    """Unknown tenant."""


class UnknownOrganization(InvalidInput):
    """Unknown organisation."""


class UnknownJob(NotFound):
    """Unknown job."""


class NotAllowed(AoerError):
    """The caller may not do this."""


class Conflict(AoerError):
    """The request conflicts with the current state."""


class AlreadyExists(Conflict):
    """The object already exists."""


class InactiveTenant(Conflict):
    """The tenant is inactive."""


class DatabaseError(AoerError):
    """The database failed. Its message is PostgreSQL's primary one (what an API caller is
    told); `diagnostics` adds what an operator needs to find the cause: the SQLSTATE, the
    DETAIL and HINT, and the first line of the CONTEXT (the function and line that raised)."""

    def __init__(self, message: str | None = None, *, diagnostics: str | None = None) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics

    @property
    def described(self) -> str:
        """The message with its diagnostics, for a job's failure and the operator's logs."""
        return f"{self} ({self.diagnostics})" if self.diagnostics else str(self)


class DuplicateKey(DatabaseError):
    """A row with this key already exists."""


class TransientDatabaseError(DatabaseError):
    """The database failed for a passing reason; the same work may succeed when retried."""


class DatabaseUnavailable(TransientDatabaseError):
    """The database is unavailable, try again shortly."""


class ConcurrencyConflict(TransientDatabaseError):
    """The statement lost a race with another transaction (deadlock, serialization, lock
    or statement timeout); retrying it may succeed."""


class TransactionAborted(ConcurrencyConflict):
    """PostgreSQL rolled the whole transaction back to break a deadlock or a serialization
    conflict with another: nothing of it was written, and running it again is the remedy
    (a lock or statement timeout, or a cancel, is not one of these)."""


class MigrationError(DatabaseError):
    """The database schema could not be migrated."""
