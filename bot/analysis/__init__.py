"""Failure analysis: clustering, verdicts from history, the LLM summary."""
