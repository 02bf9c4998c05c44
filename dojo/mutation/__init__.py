"""Mutation testing of kata solutions: operators, mutants and their scores."""
