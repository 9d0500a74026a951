"""The kernel every other package builds on: domain types and enums, evidence codes, the
error root, settings, clock, logs, metrics, the relational base and migrations, the
InfluxDB client, the device wire contract and the registry. It imports no stage
(checked by `lint-imports`; see docs/architecture.md)."""
