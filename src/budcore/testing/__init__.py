"""budcore.testing."""
