"""Pasientens legemiddelliste (PLL): the shared medication list."""
