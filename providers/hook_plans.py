"""Plans of webhook changes (GitLab hooks, Azure DevOps service-hook subscriptions) and how an
apply of one is reported: the same words and the same honesty about a half-applied plan for
every SCM. Pure, except ``apply_plan``, which runs the SCM's own write for each change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from providers.base import ProviderError

M = TypeVar("M", bound=BaseModel)
Action = Literal["create", "update", "noop", "delete", "keep"]
T = TypeVar("T")
# The order a plan is printed and applied in: deletes last, so a failure never leaves a target
# with its old hook gone and its new one not yet there.
_ORDER: dict[Action, int] = {"create": 0, "update": 1, "noop": 2, "keep": 3, "delete": 4}
_VERB: dict[Action, str] = {
    "create": "create",
    "update": "update",
    "noop": "no-op",
    "delete": "delete",
    "keep": "keep",
}


class ManifestError(ValueError):
    """A hooks file is unreadable or says something impossible; the message says what."""


def parse_manifest(text: str, model: type[M], *, source: str) -> M:
    """A YAML hooks file validated by ``model``; ManifestError naming ``source``, the field and
    the problem (the first one: one line for the operator)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source} is not valid YAML ({exc})") from None
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise ManifestError(f"{source}: {where}: {first['msg']}") from None


@dataclass(frozen=True, slots=True)
class Change(Generic[T]):
    """One line of a plan: what happens to one hook (or subscription) and why."""

    action: Action
    where: str  # what a person recognises: "project group/app", "Fabrikam build.complete"
    subject: T  # what is written (create, update) or acted on (noop, delete, keep)
    remote_id: str | None = None  # the existing hook's id (update, noop, delete, keep)
    why: tuple[str, ...] = ()  # what differs (update), or why it stays (keep)

    @property
    def writes(self) -> bool:
        """True when applying this change calls the SCM."""
        return self.action in ("create", "update", "delete")

    def line(self) -> str:
        """The change as one plan line."""
        ident = f" (id {self.remote_id})" if self.remote_id else ""
        why = f": {'; '.join(self.why)}" if self.why else ""
        return f"  {_VERB[self.action]:<7} {self.where}{ident}{why}"


def ordered(changes: Sequence[Change[T]]) -> list[Change[T]]:
    """Changes in the order they are printed and applied (stable within an action)."""
    return sorted(changes, key=lambda c: _ORDER[c.action])


def summary(changes: Sequence[Change[T]]) -> str:
    """``2 to create, 1 to update, 3 unchanged, 0 to delete`` (and kept ones, if any)."""
    count = {action: sum(c.action == action for c in changes) for action in _ORDER}
    text = (
        f"{count['create']} to create, {count['update']} to update, "
        f"{count['noop']} unchanged, {count['delete']} to delete"
    )
    if count["keep"]:
        text += f", {count['keep']} no longer in the file (kept; --prune deletes them)"
    return text


@dataclass(slots=True)
class ApplyOutcome(Generic[T]):
    """What an apply did: the changes applied, the one that failed and those never tried."""

    applied: list[Change[T]] = field(default_factory=list)
    failed: Change[T] | None = None
    error: ProviderError | None = None
    not_applied: list[Change[T]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed is None


async def apply_plan(
    changes: Sequence[Change[T]], write: Callable[[Change[T]], Awaitable[None]]
) -> ApplyOutcome[T]:
    """Run ``write`` for each change that writes, in order, stopping at the first failure: a
    refusal usually repeats (the same token, the same rights), and stopping keeps the report of
    what was and was not applied short and exact."""
    outcome: ApplyOutcome[T] = ApplyOutcome()
    pending = [c for c in ordered(changes) if c.writes]
    for index, change in enumerate(pending):
        try:
            await write(change)
        except ProviderError as exc:
            outcome.failed, outcome.error = change, exc
            outcome.not_applied = pending[index + 1 :]
            return outcome
        outcome.applied.append(change)
    return outcome


def outcome_lines(outcome: ApplyOutcome[T], *, reason: str) -> list[str]:
    """The report of a failed apply: the failure (``reason``: one line naming what is missing),
    then every change applied and every change not applied, so nothing is left unreported."""
    assert outcome.failed is not None
    done = len(outcome.applied)
    total = done + 1 + len(outcome.not_applied)
    lines = [f"change {done + 1} of {total} failed: {outcome.failed.line().strip()}: {reason}"]
    lines.append(f"applied ({done}):" if done else "applied: none")
    lines += [c.line() for c in outcome.applied]
    lines.append(f"not applied ({total - done}):")
    lines += [c.line() for c in [outcome.failed, *outcome.not_applied]]
    return lines
