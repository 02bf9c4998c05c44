"""Tests of the learner commands of the `kata` CLI, on a tiny kata repository in tmp_path."""
