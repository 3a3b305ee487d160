"""EthHook's exceptions: one root, and classes that decide whether work is retried."""


class EthHookError(Exception):
    """Root of every error EthHook raises on purpose."""


class ConfigError(EthHookError):
    """A setting is missing or invalid; the message names the variable."""


class InputError(EthHookError):
    """A user gave bad input (CLI argument, filter, URL); the message says how to fix it.

    `field`: the API field the input was given in (`url`, `where`, …), when the check knows it,
    so that a form can show the message beside that field; None otherwise."""

    field: str | None = None


class NotFoundError(InputError):
    """A named endpoint, delivery or chain does not exist."""


class PermissionDeniedError(InputError):
    """The caller's key may not take this action at all (only the operator key may)."""


class TooManyJobsError(InputError):
    """The caller has as many jobs queued or running as it may; once one ends it may start more."""


class BusyError(InputError):
    """Too many requests of one kind are under way (the caller's, or everyone's): retry after
    `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TransientError(EthHookError):
    """A failure worth retrying later (network, node, broker)."""


class SchemaError(EthHookError):
    """The database has no EthHook schema, or an older one; `ethhook db upgrade` makes it current."""
