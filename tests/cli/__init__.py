"""Tests of cli/: the commands, the map page, the client examples."""
