"""Transport: the per-party receiver and sender actors, their gRPC setup and the wire format."""
