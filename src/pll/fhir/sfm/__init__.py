"""SFM Basis, the national prescribing module's FHIR API, as PLL speaks it.

``codes`` names the profiles, extensions and code systems; ``reading`` turns an SFM document
into PLL's own content; ``document`` writes PLL's list as an SFM ``$getMedication`` document.
The reference response from the national test environment is in
``shared/reference/sfm-basis``; the guide is https://simplifier.net/guide/SFMAPIBasis.
"""
