"""The local stack end to end: the caller's webhook latency by path, and throughput in jobs/s."""
