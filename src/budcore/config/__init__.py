"""budcore.config."""
