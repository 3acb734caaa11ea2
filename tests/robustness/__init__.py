"""Whole-process robustness: kills mid-write, full and read-only disks, the data dir, planted links."""
