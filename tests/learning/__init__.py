"""Tests of learning/: plasticity rules, the link graph, consolidation, the use signal."""
