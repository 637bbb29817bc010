"""Helpers for ``bench/run_bench.py``: database setup and loading, SQL capture, load drivers."""
