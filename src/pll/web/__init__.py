"""The web UI: server-rendered pages for doctors, patients and pharmacies (DESIGN §4).

Pages are thin adapters over the same services the FHIR API calls (DESIGN §5): a page builds
the FHIR resources a journal system would send, hands them to the service, and renders what
comes back, so every rule holds in the UI exactly as in the API.
"""
