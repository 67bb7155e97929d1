"""Inbound SCM webhooks: verify, deduplicate, persist; one module per platform."""
