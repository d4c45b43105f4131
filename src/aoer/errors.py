"""The orchestrator's exceptions: one root, a few kinds the API maps to status codes."""


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


class InactiveTenant(InvalidInput):
    """The tenant is inactive."""


class DatabaseError(AoerError):
    """The database failed."""


class MigrationError(DatabaseError):
    """The database schema could not be migrated."""
