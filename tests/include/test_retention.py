"""Tests of the retention rules (archivist.retention) and their settings (config.load_retention):
worked examples with the reasons given, restic's corner cases (empty periods skipped, the oldest
bundle kept while a rule has places left, one bundle kept by several rules), and plans for a
two-year calendar with gaps and busy days compared with a second, simpler reading of restic's
rules written here."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

import pytest

from archivist import config
from archivist.errors import ConfigurationError
from archivist.retention import RetentionPolicy, apply_policy


@dataclass(frozen=True)
class Fake:
    name: str
    date: dt.date


def _days(first: str, last: str) -> list[Fake]:
    """One bundle a day from `first` to `last`, newest first."""
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    return [Fake(f"b-{d}", d) for d in reversed(days)]


def _dated(*named: str) -> list[Fake]:
    """Bundles from "name YYYY-MM-DD" strings, in the order given (newest first)."""
    return [Fake(name, dt.date.fromisoformat(day)) for name, day in (text.split() for text in named)]


def _kept(verdicts) -> dict[str, tuple[str, ...]]:
    return {v.bundle.name: v.reasons for v in verdicts if v.kept}


def test_keep_last_alone_keeps_the_newest_n():
    bundles = _days("2026-01-01", "2026-02-15")
    kept = _kept(apply_policy(bundles, RetentionPolicy(last=30)))
    assert list(kept) == [b.name for b in bundles[:30]]
    assert set(kept.values()) == {("last 30",)}


def test_a_worked_calendar_names_every_rule_that_keeps_each_bundle():
    # 2026-01-01 (a Thursday) to 2026-03-31 (a Tuesday), one bundle a day
    bundles = _days("2026-01-01", "2026-03-31")
    kept = _kept(apply_policy(bundles, RetentionPolicy(last=7, daily=10, weekly=4, monthly=3, yearly=2)))
    assert kept["b-2026-03-31"] == ("last 7", "daily 10", "weekly 4", "monthly 3", "yearly 2")
    assert kept["b-2026-03-25"] == ("last 7", "daily 10")
    assert kept["b-2026-03-24"] == ("daily 10",)
    assert kept["b-2026-03-29"] == ("last 7", "daily 10", "weekly 4")  # a Sunday: the newest of ISO week 13
    assert kept["b-2026-03-22"] == ("daily 10", "weekly 4")
    assert kept["b-2026-03-15"] == ("weekly 4",)
    assert "b-2026-03-08" not in kept  # the weekly rule's places are taken
    assert kept["b-2026-02-28"] == ("monthly 3",)
    # January is the third month; the year's rule has a place left at the oldest bundle, so keeps it
    assert kept["b-2026-01-31"] == ("monthly 3",)
    assert kept["b-2026-01-01"] == ("yearly 2",)
    assert len(kept) == 10 + 1 + 2 + 1  # days 22–31, week 11, February and January, the oldest


def test_periods_without_a_bundle_are_skipped_not_counted():
    # monthly bundles with a year-long gap: monthly 3 reaches back over the gap
    bundles = [
        Fake(f"m{n}", d)
        for n, d in enumerate(
            dt.date.fromisoformat(s) for s in ("2026-05-03", "2026-04-03", "2025-03-03", "2025-02-03", "2025-01-03")
        )
    ]
    kept = _kept(apply_policy(bundles, RetentionPolicy(last=1, monthly=3)))
    assert kept == {"m0": ("last 1", "monthly 3"), "m1": ("monthly 3",), "m2": ("monthly 3",)}


def test_the_newest_bundle_of_a_busy_day_speaks_for_it():
    bundles = _dated(
        "evening 2026-03-02",
        "noon 2026-03-02",
        "morning 2026-03-02",
        "yesterday 2026-03-01",
        "before 2026-02-28",
        "oldest 2026-02-27",
    )
    kept = _kept(apply_policy(bundles, RetentionPolicy(last=1, daily=2)))
    assert kept == {"evening": ("last 1", "daily 2"), "yesterday": ("daily 2",)}


def test_a_rule_with_places_left_keeps_the_oldest_bundle():
    bundles = _dated("new 2026-03-02", "mid 2026-03-01", "old 2026-03-01")
    kept = _kept(apply_policy(bundles, RetentionPolicy(last=1, daily=5)))
    assert kept == {"new": ("last 1", "daily 5"), "mid": ("daily 5",), "old": ("daily 5",)}
    # no place left: the oldest goes
    kept = _kept(apply_policy(bundles, RetentionPolicy(last=1, daily=2)))
    assert kept == {"new": ("last 1", "daily 2"), "mid": ("daily 2",)}


def test_iso_weeks_cross_the_new_year():
    # 2026-12-31 (Thursday) and 2027-01-03 (Sunday) are both in ISO week 2026-W53
    bundles = _dated("sun 2027-01-03", "thu 2026-12-31", "mon 2026-12-28", "prev 2026-12-27", "older 2026-12-20")
    kept = _kept(apply_policy(bundles, RetentionPolicy(last=1, weekly=2)))
    assert kept == {"sun": ("last 1", "weekly 2"), "prev": ("weekly 2",)}


def test_empty_listing_and_describe():
    assert apply_policy([], RetentionPolicy(last=7, daily=3)) == []
    assert RetentionPolicy(last=30, daily=7, monthly=12).describe() == "last 30, daily 7, monthly 12"
    assert RetentionPolicy().describe() == "last 30"


# --- a two-year calendar against a second reading of restic's rules ------------------------------


def _restic_by_grouping(newest_first: list[Fake], policy: RetentionPolicy) -> dict[str, set[str]]:
    """restic's forget rules read another way: group the bundles by period, keep the newest
    bundle of each of the N newest periods, and the oldest bundle when fewer than N periods
    come before it. Only valid for a list whose dates never rise (as a calendar is)."""
    period_of = {
        "last": lambda i, b: i,
        "daily": lambda i, b: b.date.isoformat(),
        "weekly": lambda i, b: f"{b.date.isocalendar().year}-W{b.date.isocalendar().week:02d}",
        "monthly": lambda i, b: b.date.strftime("%Y-%m"),
        "yearly": lambda i, b: b.date.year,
    }
    keeps: dict[str, set[str]] = {}
    for rule, count in (
        ("last", policy.last),
        ("daily", policy.daily),
        ("weekly", policy.weekly),
        ("monthly", policy.monthly),
        ("yearly", policy.yearly),
    ):
        if not count:
            continue
        newest_of: dict[object, str] = {}
        for i, b in enumerate(newest_first):
            newest_of.setdefault(period_of[rule](i, b), b.name)
        chosen = set(list(newest_of.values())[:count])
        before_oldest = {period_of[rule](i, b) for i, b in enumerate(newest_first[:-1])}
        if newest_first and len(before_oldest) < count:
            chosen.add(newest_first[-1].name)
        for name in chosen:
            keeps.setdefault(name, set()).add(f"{rule} {count}")
    return keeps


def _two_years(seed: int) -> list[Fake]:
    """Two years of backups, newest first: most days one, some days two or three, some days
    none, and a few empty weeks and one empty month."""
    rng = random.Random(seed)
    start = dt.date(2025, 1, 1)
    empty_weeks = {rng.randrange(104) for _ in range(4)}
    empty_month = (2025, rng.randrange(1, 13))
    bundles = []
    for n in range(730):
        day = start + dt.timedelta(days=n)
        if n // 7 in empty_weeks or (day.year, day.month) == empty_month or rng.random() < 0.1:
            continue
        for k in range(rng.choice((1, 1, 1, 1, 2, 3))):
            bundles.append(Fake(f"b-{day}-{k}", day))
    return list(reversed(bundles))


POLICIES = [
    RetentionPolicy(last=30),
    RetentionPolicy(last=7, daily=7, weekly=4, monthly=12, yearly=3),
    RetentionPolicy(last=10, daily=30),
    RetentionPolicy(last=7, weekly=52),
    RetentionPolicy(last=7, monthly=36, yearly=10),  # more places than periods: the oldest is kept
    RetentionPolicy(last=14, daily=14, weekly=8, monthly=6),
]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.describe().replace(", ", "+").replace(" ", ""))
def test_two_year_calendar_matches_an_independent_reading_of_restic(seed, policy):
    bundles = _two_years(seed)
    assert len(bundles) > 600
    verdicts = apply_policy(bundles, policy)
    assert [v.bundle for v in verdicts] == bundles
    planned = {v.bundle.name: set(v.reasons) for v in verdicts if v.kept}
    assert planned == _restic_by_grouping(bundles, policy)
    assert len(planned) >= min(policy.last, len(bundles))  # keep-last's minimum always holds
    # no bundle is kept without a rule, and every kept bundle of a calendar rule is the newest of its day
    newest_of_day = {}
    for b in bundles:
        newest_of_day.setdefault(b.date, b.name)
    oldest = bundles[-1].name
    for name, reasons in planned.items():
        if not any(r.startswith("last ") for r in reasons) and name != oldest:
            assert newest_of_day[dict((b.name, b.date) for b in bundles)[name]] == name


# --- settings ----------------------------------------------------------------------------------


def test_load_retention_reads_the_variables_and_lets_arguments_win():
    env = {"BACKUPS_KEPT": "10", "BACKUPS_KEPT_DAILY": "7", "BACKUPS_KEPT_MONTHLY": " 12 "}
    assert config.load_retention(env=env) == RetentionPolicy(last=10, daily=7, monthly=12)
    assert config.load_retention(8, env=env, daily=0, yearly="3") == RetentionPolicy(last=8, monthly=12, yearly=3)
    assert config.load_retention(env={}) == RetentionPolicy(last=30)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"BACKUPS_KEPT_WEEKLY": "four"}, "BACKUPS_KEPT_WEEKLY must be a whole number"),
        ({"BACKUPS_KEPT_YEARLY": "-1"}, "BACKUPS_KEPT_YEARLY is -1"),
        ({"BACKUPS_KEPT": "5", "BACKUPS_KEPT_DAILY": "30"}, "the minimum is 7"),
    ],
)
def test_load_retention_names_the_bad_variable(env, named):
    with pytest.raises(ConfigurationError, match=named):
        config.load_retention(env=env)


def test_load_retention_refuses_an_unknown_rule():
    with pytest.raises(ConfigurationError, match="hourly"):
        config.load_retention(env={}, hourly=3)
