"""`aac report`: the CI-side client that detects the CI context and uploads test results."""
