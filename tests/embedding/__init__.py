"""Tests of embedding/: the bundled model, its quantized copy, and the native import order."""
