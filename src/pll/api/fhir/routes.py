"""The FHIR route table: every module's routes in the order Starlette matches them, and what
the modules state for the CapabilityStatement (their search parameters and operations).

Order matters: a request goes to the first route whose path and method match, and
``/fhir/List/{id}`` also matches ``/fhir/List/$check``. The current-list reads come first as
the requests PLL serves most, then the entries and prescriptions, the changes made most (no
other route matches their paths; a PUT tried some 70 routes before its own: issue 20); the
rest keep the order they have always had.
"""

from __future__ import annotations

from pll.api.fhir import (
    acknowledgements,
    administration,
    administrations,
    allergies,
    audit,
    care_units,
    check,
    consent,
    dispensing,
    entries,
    list_state,
    lists,
    medication,
    multidose,
    patients,
    provenance,
    reconcile,
    sfm,
    subscriptions,
    tasks,
    transaction,
    unit_settings,
)
from pll.api.fhir.common import FhirRoute, SearchParam

ROUTES: list[FhirRoute] = [
    *lists.CURRENT_READS,
    *entries.ROUTES,
    *transaction.ROUTES,
    *patients.ROUTES,
    *sfm.ROUTES,
    *lists.ROUTES,
    *reconcile.ROUTES,
    *list_state.ROUTES,
    *multidose.ROUTES,
    *care_units.ROUTES,
    *unit_settings.ROUTES,
    *administration.ROUTES,
    *administrations.ROUTES,
    *acknowledgements.ROUTES,
    *dispensing.ROUTES,
    *provenance.ROUTES,
    *consent.ROUTES,
    *audit.ROUTES,
    *check.ROUTES,
    *medication.ROUTES,
    *allergies.ROUTES,
    *tasks.ROUTES,
    *subscriptions.ROUTES,
]

#: Every search parameter each type accepts; the handlers refuse any other, and the
#: CapabilityStatement lists exactly these.
SEARCH_PARAMS: dict[str, list[SearchParam]] = {
    **patients.SEARCH_PARAMS,
    **lists.SEARCH_PARAMS,
    **entries.SEARCH_PARAMS,
    **provenance.SEARCH_PARAMS,
    **consent.SEARCH_PARAMS,
    **allergies.SEARCH_PARAMS,
    **medication.SEARCH_PARAMS,
    **audit.SEARCH_PARAMS,
    **dispensing.SEARCH_PARAMS,
    **tasks.SEARCH_PARAMS,
    **administrations.SEARCH_PARAMS,
}

#: The documentation of each operation, by name, for the CapabilityStatement.
OPERATIONS: dict[str, str] = {
    **lists.OPERATIONS,
    **reconcile.OPERATIONS,
    **list_state.OPERATIONS,
    **check.OPERATIONS,
    **sfm.OPERATIONS,
    **multidose.OPERATIONS,
    **care_units.OPERATIONS,
    **unit_settings.OPERATIONS,
    **administration.OPERATIONS,
    **acknowledgements.OPERATIONS,
    **tasks.OPERATIONS,
}
