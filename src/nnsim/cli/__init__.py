"""Thin command-line entry points over the Python API (DESIGN.md rule 6)."""
