"""Where buckets live: in process memory or in Redis."""
