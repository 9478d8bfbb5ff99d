"""The one error hierarchy: every message names the offending value and where it came from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class NudgeflowError(Exception):
    """Base class for errors caused by input or configuration, shown without a traceback."""

    exit_code = 1


class ConfigError(NudgeflowError):
    """A NUDGEFLOW_* variable holds a value we cannot use."""

    exit_code = 2


class InUse(NudgeflowError):
    """A segment or template that campaigns, segments or waiting messages still need."""


class AlreadyExists(NudgeflowError):
    """A name that must be new is taken (a user)."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One validation problem: where it is (a JSON path, FILE:LINE, a node id) and what is wrong."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class ValidationError(NudgeflowError):
    """Input that fails validation; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: Iterable[Problem], title: str = "invalid input") -> None:
        self.problems = list(problems)
        self.title = title
        super().__init__("\n".join(str(p) for p in self.problems) or title)

    @classmethod
    def from_messages(cls, messages: object, prefix: str = "$") -> ValidationError:
        """Flatten marshmallow's nested ``ValidationError.messages`` into path-named problems."""
        return cls(Problem(path, msg) for path, msg in flatten_messages(messages, prefix))


def flatten_messages(messages: object, prefix: str = "$") -> list[tuple[str, str]]:
    """Turn marshmallow's nested error dict into ``[(json_path, message), ...]``."""
    out: list[tuple[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                out.extend(flatten_messages(value, prefix))
            elif isinstance(key, int):
                out.extend(flatten_messages(value, f"{prefix}[{key}]"))
            else:
                out.extend(flatten_messages(value, f"{prefix}.{key}"))
    elif isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            out.extend((prefix, m) for m in messages)
        else:
            for item in messages:
                out.extend(flatten_messages(item, prefix))
    else:
        out.append((prefix, str(messages)))
    return out


class NotFound(NudgeflowError):
    """A key, external id or name that does not exist."""

    exit_code = 2


class PrunedDate(NudgeflowError):
    """A run of a date whose messages and activities `nudgeflow prune` removed: running it
    again would send them again."""


class Conflict(NudgeflowError):
    """Valid input that the current state refuses (too few points; an idempotency key used for
    another request): the API answers 409 with `code` and the problems."""

    code = "conflict"

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        self.problems = list(problems)
        super().__init__(message)


class InsufficientPoints(Conflict):
    code = "insufficient_points"


class IdempotencyConflict(Conflict):
    """An idempotency key already used for a different request (a blast, points)."""

    code = "idempotency_conflict"
    exit_code = 2
