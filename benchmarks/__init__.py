"""Benchmarks that print figures (`eldercare bench ...`); imported by nothing but the CLI."""
