"""Content shared by the domain unit tests: shaped like what the FHIR layer hands the domain."""

from __future__ import annotations

from datetime import UTC, datetime

ATC = "http://www.whocc.no/atc"
PATIENT_ID = "patient-1"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

ONE_MORNING = [
    {
        "text": "1 tablett morgen",
        "timing": {"repeat": {"when": ["MORN"]}},
        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
    }
]
TWO_MORNING_EVENING = [
    {
        "text": "2 tabletter morgen og kveld",
        "timing": {"repeat": {"when": ["MORN", "EVE"]}},
        "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "tablett"}}],
    }
]
