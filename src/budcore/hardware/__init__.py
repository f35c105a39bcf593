"""budcore.hardware."""
