"""Which bundles rotation keeps: restic's `forget` rules, applied to a list of bundles.

Rules: `last N` keeps the newest N bundles; `daily N`, `weekly N`, `monthly N`, `yearly N` keep
the newest bundle of each of the N newest days, ISO weeks, months or years that hold a bundle,
counted back from the newest bundle (a period without a bundle is skipped, not counted). A
bundle may be kept by several rules, and is deleted only when none keeps it. As in restic
(internal/restic/snapshot_policy.go), a rule with places left once it reaches the oldest bundle
keeps that one too: the history kept reaches as far back as it can.

A bundle's period comes from the date in its name, the UTC day its backup started; the order
is the caller's (rotation's: newest first by when the bucket received each bundle). Plain
Python, no I/O: the plan is a function of the listing alone, so rotation stays stateless.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, fields
from typing import Generic, Protocol, TypeVar

PERIODS: dict[str, Callable[[dt.date], Hashable]] = {
    "daily": lambda d: d,
    "weekly": lambda d: d.isocalendar()[:2],  # (ISO year, ISO week): 2026-12-31 is in 2026-W53
    "monthly": lambda d: (d.year, d.month),
    "yearly": lambda d: d.year,
}


@dataclass(frozen=True)
class RetentionPolicy:
    """How many bundles each rule keeps; 0 turns a calendar rule off. Validated by config.load_retention."""

    last: int = 30
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def rules(self) -> list[tuple[str, int]]:
        """The rules in effect, as (name, count), keep-last first."""
        return [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) > 0]

    def describe(self) -> str:
        """E.g. "last 30, daily 7, monthly 12": also the label of each rule in a plan."""
        return ", ".join(f"{name} {count}" for name, count in self.rules())


class Dated(Protocol):
    """What the rules need of a bundle: its name (unique) and the date its period comes from."""

    @property
    def name(self) -> str: ...

    @property
    def date(self) -> dt.date: ...


B = TypeVar("B", bound=Dated)


@dataclass(frozen=True)
class Verdict(Generic[B]):
    """One bundle and the rules that keep it ("last 30", "daily 7", …); none: it is deleted."""

    bundle: B
    reasons: tuple[str, ...]

    @property
    def kept(self) -> bool:
        return bool(self.reasons)


def apply_policy(newest_first: Sequence[B], policy: RetentionPolicy) -> list[Verdict[B]]:
    """Each bundle of `newest_first` (in that order) with the rules that keep it."""
    left = dict(policy.rules())
    label = {name: f"{name} {count}" for name, count in policy.rules()}
    seen: dict[str, Hashable] = {}
    verdicts = []
    for nr, bundle in enumerate(newest_first):
        oldest = nr == len(newest_first) - 1
        reasons = []
        for rule in list(left):
            if left[rule] <= 0:
                continue
            # keep-last puts every bundle in a period of its own
            period = nr if rule == "last" else PERIODS[rule](bundle.date)
            if rule not in seen or seen[rule] != period or oldest:
                seen[rule] = period
                left[rule] -= 1
                reasons.append(label[rule])
        verdicts.append(Verdict(bundle, tuple(reasons)))
    return verdicts
