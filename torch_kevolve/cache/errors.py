"""The one error the cache raises: a record or a store that cannot be used; the message says what to do."""


class CacheError(Exception):
    """A cache record or store is malformed, corrupt or unreachable."""
