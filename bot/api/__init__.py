"""HTTP API: the CI trigger and results endpoints, health, and the OpenAPI description."""
