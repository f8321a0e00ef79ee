"""Opening hours as real logic: weekdays, holidays, dated exceptions, time zones, daylight saving."""

import datetime as dt
from pathlib import Path

import pytest

from voicebot.config import load_installation
from voicebot.knowledge.answers import OpeningHoursAnswer, office_asked, when_asked
from voicebot.knowledge.opening_hours import Schedule
from voicebot.knowledge.phrasebook import phrasebook
from voicebot.knowledge.when import When

REPO = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def inst():
    return load_installation(REPO / "voicebot.yml")


def ask(inst, line: str, question: str, now: dt.datetime) -> str:
    tenant = inst.tenant(line)
    when = when_asked(tenant, question, now)
    return OpeningHoursAnswer(tenant, office_asked(tenant, question), phrasebook(tenant.language)).answer(when, now)


def schedule(inst, line: str, office: str) -> Schedule:
    tenant = inst.tenant(line)
    return Schedule.of_office(tenant.offices[office], tenant.holiday_calendar())


def test_weekly_hours_per_weekday(inst):
    borgerservice = schedule(inst, "demo-kommune", "borgerservice")
    week = [borgerservice.day(dt.date(2026, 11, 23) + dt.timedelta(days=i)) for i in range(7)]
    assert [str(p.ranges[0].end) if p.ranges else None for p in week] == [
        "15:00:00", "15:00:00", "15:00:00", "17:30:00", "13:00:00", None, None]


def test_public_holidays_close_the_office_and_are_named(inst):
    plan = schedule(inst, "demo-kommune", "borgerservice").day(dt.date(2026, 12, 25))
    assert plan.closed and plan.reason == "Juledag"
    # Corpus Christi is a holiday in North Rhine-Westphalia, not everywhere in Germany.
    assert schedule(inst, "stadt-kreis", "servicecenter").day(dt.date(2026, 6, 4)).reason == "Fronleichnam"
    assert schedule(inst, "demo-city", "library").day(dt.date(2026, 8, 31)).closed  # bank holiday


def test_dated_exceptions_override_week_and_holidays(inst):
    borgerservice = schedule(inst, "demo-kommune", "borgerservice")
    short_day = borgerservice.day(dt.date(2026, 12, 23))
    assert [(str(r.start), str(r.end)) for r in short_day.ranges] == [("10:00:00", "12:00:00")]
    assert borgerservice.day(dt.date(2026, 12, 24)).closed


def test_next_opening_skips_weekend_and_christmas(inst):
    borgerservice = schedule(inst, "demo-kommune", "borgerservice")
    opening = borgerservice.next_opening(dt.datetime(2026, 12, 23, 12, 30))
    # 24 closed (exception), 25 and 26 holidays, 27 Sunday: Monday the 28th at ten.
    assert (opening.date, str(opening.interval.start)) == (dt.date(2026, 12, 28), "10:00:00")


def test_open_now_closing_time_and_week(inst):
    answer = ask(inst, "demo-kommune", "har i åbent nu", dt.datetime(2026, 11, 26, 15, 0, tzinfo=UTC))
    assert answer.startswith("Borgerservice har åbent nu og lukker klokken 17.30.")
    assert "mandag til onsdag fra 10 til 15" in answer


def test_closed_now_says_when_it_opens(inst):
    friday_evening = dt.datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
    assert ask(inst, "demo-city", "are you open", friday_evening).startswith(
        "The town hall customer service centre is closed right now. "
        "The town hall customer service centre opens again on Monday 30 November at 9 am.")


def test_named_office_on_a_weekday(inst):
    tuesday = dt.datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert ask(inst, "demo-kommune", "har biblioteket åbent på lørdag", tuesday) == \
        "Biblioteket har åbent lørdag den 28. november fra klokken 10 til 14."
    assert ask(inst, "stadt-kreis", "hat das bürgerbüro am samstag auf", tuesday) == (
        "Das Servicecenter ist am Samstag, dem 28. November geschlossen. "
        "Das Servicecenter öffnet wieder am Montag, dem 30. November um 8 Uhr.")


def test_at_a_time_on_a_day(inst):
    tuesday = dt.datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert ask(inst, "demo-kommune", "har i åbent klokken halv fem på torsdag", tuesday) == (
        "Ja. Borgerservice har åbent torsdag den 26. november klokken 16.30, og lukker klokken 17.30.")
    assert ask(inst, "demo-kommune", "har i åbent i morgen klokken fem", tuesday).startswith(
        "Nej. Borgerservice har ikke åbent i morgen klokken 17. Borgerservice har åbent i morgen fra klokken 10 til 15.")


def test_a_time_already_past_today_means_tomorrow(inst):
    evening = dt.datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # 18:00 in London
    assert ask(inst, "demo-city", "is the library open at ten", evening) == (
        "Yes. The central library is open tomorrow at 10 am, until 7 pm.")


def test_holiday_answer_names_the_holiday_and_the_next_opening(inst):
    tuesday = dt.datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert ask(inst, "stadt-kreis", "haben sie heiligabend geöffnet", tuesday) == (
        "Das Servicecenter ist am Donnerstag, dem 24. Dezember geschlossen: Heiligabend. "
        "Das Servicecenter öffnet wieder am Montag, dem 28. Dezember um 8 Uhr.")
    assert ask(inst, "demo-kommune", "har i åbent den dag", dt.datetime(2026, 12, 23, 9, 0, tzinfo=UTC)).startswith(
        "Borgerservice har åbent nu og lukker klokken 12.")


def test_exception_day_mentions_the_reason(inst):
    monday = dt.datetime(2026, 12, 21, 9, 0, tzinfo=UTC)
    tenant = inst.tenant("demo-kommune")
    answer = OpeningHoursAnswer(tenant, None, phrasebook("da")).answer(When(date=dt.date(2026, 12, 23)), monday)
    assert answer == ("Borgerservice har åbent onsdag den 23. december fra klokken 10 til 12. "
                      "Det er særlige åbningstider på grund af lille juleaftensdag.")


@pytest.mark.parametrize("utc, expected_start", [
    # Monday after the spring change: 08:30 UTC is 10:30 CEST, open (a fixed +1 would say 09:30, closed).
    (dt.datetime(2026, 3, 30, 8, 30, tzinfo=UTC), "Borgerservice har åbent nu"),
    # Monday after the autumn change: 08:30 UTC is 09:30 CET, closed (a stale +2 would say 10:30, open).
    (dt.datetime(2026, 10, 26, 8, 30, tzinfo=UTC), "Borgerservice har lukket lige nu. Borgerservice åbner igen i dag klokken 10."),
])
def test_daylight_saving_changes(inst, utc, expected_start):
    assert ask(inst, "demo-kommune", "har i åbent", utc).startswith(expected_start)


def test_same_instant_in_two_time_zones(inst):
    instant = dt.datetime(2026, 11, 26, 17, 15, tzinfo=UTC)  # Thursday: 18:15 in Berlin, 17:15 in London
    assert ask(inst, "stadt-kreis", "haben sie offen", instant).startswith("Das Servicecenter ist gerade geschlossen.")
    assert ask(inst, "demo-city", "are you open", instant).startswith(
        "The town hall customer service centre is open now, until 7 pm.")


def test_agents_keep_the_office_s_dated_exceptions(inst):
    # 24 December 2026 is a Thursday: agent hours say 9-17:30, the office is closed (juleaften).
    tenant = inst.tenant("demo-kommune")
    christmas_eve = dt.datetime(2026, 12, 24, 11, 0)
    agents = Schedule.of_agents(tenant.handoff, tenant.office(), tenant.holiday_calendar())
    assert not agents.is_open(christmas_eve)
    assert (agents.next_opening(christmas_eve).date, agents.day(christmas_eve.date()).reason) == (
        dt.date(2026, 12, 28), "juleaften")
    # On 23 December the office opens 10-12 (agents 9-15 on a Wednesday): agents take calls 10-12.
    assert [agents.is_open(dt.datetime(2026, 12, 23, h, 30)) for h in (9, 10, 11, 12)] == [False, True, True, False]
    working = tenant.handoff.copy(update={"follow_office_exceptions": False})
    assert Schedule.of_agents(working, tenant.office(), tenant.holiday_calendar()).is_open(christmas_eve)
