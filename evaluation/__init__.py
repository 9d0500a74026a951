"""Evaluations against ground truth (`eldercare eval ...`); imported by nothing but the CLI."""
