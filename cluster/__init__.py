"""The platform spread over processes on NATS JetStream: site partitions, leases,
the readings and transitions streams, and their wire format (docs/cluster.md)."""
