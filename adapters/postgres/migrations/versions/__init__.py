"""Migration revisions, oldest first: ``0001_initial``, ``0002_admission``, ``0003_quota_tree``,
``0004_queue_isolation``, ``0005_reservations``."""
