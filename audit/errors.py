"""Refusals of commands by the rules of an aggregate: nothing was recorded, and the message says
which rule and why. Pure: aggregates raise them without importing Django."""


class DomainError(Exception):
    """A command refused by the rules."""


class NotFound(DomainError):
    pass


class AlreadyExists(DomainError):
    pass


class InvalidCommand(DomainError):
    pass
