"""budcore.pipeline."""
