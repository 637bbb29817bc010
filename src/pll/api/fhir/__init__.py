"""FHIR R4 REST under ``/fhir``: each handler turns a request into one service call.

Interactions follow https://hl7.org/fhir/R4/http.html: ``ETag``/``If-Match`` versioning,
``_history``, version reads, searchset Bundles with paging. One module per resource or
operation; each holds its handlers and states its part of the CapabilityStatement: its
``ROUTES`` (:class:`~pll.api.fhir.common.FhirRoute`), the ``SEARCH_PARAMS`` of the types it
searches and the documentation of its ``OPERATIONS``. :mod:`pll.api.fhir.routes` assembles
them in matching order, and :mod:`pll.api.fhir.capability` builds ``metadata`` from that
table, so it says exactly what is served.
"""
