"""Calendar rules shared by segments and triggers: anniversaries and 29 February."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

# The dates a campaign can run on or a segment be evaluated as of: a run adds offsets,
# lifetimes (up to 100 years) and delays to its date, which must stay inside the calendar.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)
DAY_RANGE = f"a date from {FIRST_DAY} to {LAST_DAY}"


def day_problem(day: date) -> str | None:
    """Why a run or as-of date is out of range, or None."""
    if FIRST_DAY <= day <= LAST_DAY:
        return None
    return f"expected {DAY_RANGE}, got {day}"


MMDD_DOMAIN = tuple(
    m * 100 + d for m in range(1, 13) for d in range(1, calendar.monthrange(2000, m)[1] + 1)
)


def anniversary(month: int, day: int, year: int) -> date:
    """The day a (month, day) falls on in `year`: 29 February is 28 February in other years."""
    if (month, day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, month, day)


def days_until(mmdd: int, as_of: date) -> int:
    """Days from as_of to the next anniversary of mmdd (0 on the day itself)."""
    month, day = divmod(mmdd, 100)
    nxt = anniversary(month, day, as_of.year)
    if nxt < as_of:
        nxt = anniversary(month, day, as_of.year + 1)
    return (nxt - as_of).days


def mmdd_falling_on(day: date) -> list[int]:
    """Anniversaries that fall on `day`: 28 February also takes 29 February in non-leap years."""
    out = [day.month * 100 + day.day]
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        out.append(229)
    return out


def latest_birth_for_age(as_of: date, years: int) -> date | None:
    """The latest birth date of someone at least `years` old on as_of (None: nobody can be)."""
    year = as_of.year - years
    if year < 1:
        return None
    if year > 9999:
        return date.max
    limit = anniversary(as_of.month, as_of.day, year)
    # On 28 February of a non-leap year, people born on 29 February have had their birthday.
    if (as_of.month, as_of.day) == (2, 28) and not calendar.isleap(as_of.year) and \
            calendar.isleap(year):
        limit = date(year, 2, 29)
    return limit


def shift(day: date, days: int) -> date | None:
    """day + days, or None past the calendar's ends."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return None
