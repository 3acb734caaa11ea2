"""Tests of service/: the operations on both storage backends, export/import, projects, privacy."""
