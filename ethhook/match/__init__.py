"""Batch → delivery rows: the matcher stage."""
