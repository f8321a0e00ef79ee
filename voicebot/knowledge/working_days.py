"""Working days on a line: Monday to Friday, except its public holidays. A callback promised
"within two working days" is due two working days after it was asked for, at the same time of
day, in the line's time zone."""

import datetime as dt

from voicebot.config import Tenant


def is_working_day(tenant: Tenant, day: dt.date, calendar=None) -> bool:
    return day.weekday() < 5 and day not in (calendar if calendar is not None else tenant.holiday_calendar())


def callback_due(tenant: Tenant, requested_at: dt.datetime) -> dt.datetime:
    """When a callback asked for at `requested_at` (aware, or naive UTC as the store gives it back)
    is due, in the line's local time. Asked on a day off, the count starts on the next working day."""
    if requested_at.tzinfo is None:
        requested_at = requested_at.replace(tzinfo=dt.timezone.utc)
    local = requested_at.astimezone(tenant.zone)
    calendar, day, left = tenant.holiday_calendar(), local.date(), tenant.callback_working_days
    if not is_working_day(tenant, day, calendar):  # Saturday's request: Monday is day 0, not day 1
        while not is_working_day(tenant, day, calendar):
            day += dt.timedelta(days=1)
        local = dt.datetime.combine(day, dt.time(8, 0), tenant.zone)
    while left:
        day += dt.timedelta(days=1)
        if is_working_day(tenant, day, calendar):
            left -= 1
    return dt.datetime.combine(day, local.timetz().replace(tzinfo=None), tenant.zone)
