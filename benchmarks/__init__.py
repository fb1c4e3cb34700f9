"""Benchmarks of PLT: against the old spider (run.py) and across memory profiles (profiles.py)."""
