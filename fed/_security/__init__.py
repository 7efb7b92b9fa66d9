"""Security: TLS credentials and party identity."""
