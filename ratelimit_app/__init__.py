"""A reusable Django app for token-bucket rate limiting; the core is framework-free."""
