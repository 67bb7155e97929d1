"""Settings, parsed once at start-up."""
