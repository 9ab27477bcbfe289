"""On-disk index: hnswlib files per space, a JSON sidecar, a batch journal and a lock."""
