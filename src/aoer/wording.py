"""Words shared by every layer's messages."""


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 day`, `2 days`; `many` for a plural not made with an s (`1 failure` is regular,
    `1 entry` / `2 entries` is not)."""
    return f"{count} {word}" if count == 1 else f"{count} {many or word + 's'}"
