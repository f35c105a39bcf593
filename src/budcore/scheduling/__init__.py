"""budcore.scheduling."""
