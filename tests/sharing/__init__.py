"""Tests of sharing/: owner and forwarders, many clients, typed operations."""
