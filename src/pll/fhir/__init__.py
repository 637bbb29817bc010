"""Mapping between the domain and FHIR R4 JSON, validation, and OperationOutcome."""
