"""Faults: the proxy layer that carries every node-to-node message, and the nemeses."""
