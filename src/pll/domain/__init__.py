"""Pure rules of the medication list: no I/O (DESIGN §5)."""
