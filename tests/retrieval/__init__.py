"""Tests of retrieval/: ranking, the keyword and vector indexes, the recall source, relevance."""
