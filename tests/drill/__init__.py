"""Tests of `kata drill`."""
