"""Reading the Kaggle no-show CSV: good rows become visits, bad rows are left out with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from clinicflow.automations.noshow import Outcome, Sex, read_kaggle
from clinicflow.errors import InputError

HEADER = (
    "PatientId,AppointmentID,Gender,ScheduledDay,AppointmentDay,Age,Neighbourhood,Scholarship,"
    "Hipertension,Diabetes,Alcoholism,Handcap,SMS_received,No-show"
)


def _csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "KaggleV2-May-2016.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_a_row_becomes_a_day_only_visit_with_conditions_and_an_sms_at_booking(
    tmp_path: Path,
) -> None:
    path = _csv(
        tmp_path,
        "29872499824296,5642903,F,2016-04-27T18:38:08Z,2016-04-29T00:00:00Z,62,"
        "JARDIM DA PENHA,0,1,0,0,2,1,Yes",
    )
    data = read_kaggle(path)
    assert data.rejected == []
    [visit] = data.visits
    assert (visit.visit_id, visit.patient_id) == ("5642903", "29872499824296")
    assert visit.start_at == datetime(2016, 4, 29, tzinfo=UTC)
    assert not visit.has_time_of_day
    assert (visit.outcome, visit.sex, visit.age_years) == (Outcome.NOSHOW, Sex.FEMALE, 62)
    assert visit.location_id == "JARDIM DA PENHA"
    assert visit.reminders_sent_at == (datetime(2016, 4, 27, 18, 38, 8, tzinfo=UTC),)
    assert visit.conditions is not None
    assert visit.conditions.hypertension
    assert visit.conditions.handicap_level == 2
    assert visit.provider_id is None
    assert visit.confirmation is None


def test_bad_rows_are_left_out_with_their_line_and_reason(tmp_path: Path) -> None:
    good = "1,10,M,2016-05-01T08:00:00Z,2016-05-03T00:00:00Z,30,CENTRO,0,0,0,0,0,0,No"
    path = _csv(
        tmp_path,
        good,
        "2,11,F,2016-05-01T08:00:00Z,2016-05-03T00:00:00Z,-1,CENTRO,0,0,0,0,0,0,No",
        "3,12,F,2016-05-10T10:51:53Z,2016-05-09T00:00:00Z,40,CENTRO,0,0,0,0,0,0,No",
        "4,13,F,2016-05-01T08:00:00Z,2016-05-03T00:00:00Z,40,CENTRO,0,0,0,0,0,0,Maybe",
        "5,14,F,not a date,2016-05-03T00:00:00Z,40,CENTRO,0,0,0,0,0,0,No",
        "6,15,F,2016-05-01T08:00:00Z,2016-05-03T00:00:00Z,40,CENTRO,0,0,0,0,7,0,No",
        "7,10,F,2016-05-01T08:00:00Z,2016-05-03T00:00:00Z,40,CENTRO,0,0,0,0,0,0,No",
        "8,16,F,2016-05-01T08:00:00Z",
    )
    data = read_kaggle(path)
    assert [v.visit_id for v in data.visits] == ["10"]
    reasons = {r.line: r.reason for r in data.rejected}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9]
    assert "Age '-1'" in reasons[3]
    assert "AppointmentDay 2016-05-09 is before ScheduledDay" in reasons[4]
    assert "No-show is 'Maybe'" in reasons[5]
    assert "ScheduledDay 'not a date'" in reasons[6]
    assert "Handcap is '7'" in reasons[7]
    assert reasons[8] == "AppointmentID appears twice"
    assert data.rejected[-1].appointment_id == "16"


def test_a_file_that_is_not_the_kaggle_data_is_refused_with_the_missing_columns(
    tmp_path: Path,
) -> None:
    path = tmp_path / "other.csv"
    path.write_text("PatientId,Age\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="header lacks AppointmentID") as caught:
        read_kaggle(path)
    assert caught.value.where == f"{path}:1"


def test_a_missing_file_says_which_file_to_pass(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"KaggleV2-May-2016\.csv"):
        read_kaggle(tmp_path / "nope.csv")
