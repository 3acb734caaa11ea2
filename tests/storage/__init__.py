"""Tests of storage/: the DuckDB store, damage refused at open, and the two backends agreeing."""
