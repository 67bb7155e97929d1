"""Test-result files: detection, streaming parsing and the per-test result model."""
