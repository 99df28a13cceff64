"""Workloads: pure generators of operations, and the clients that run them against nodes."""
