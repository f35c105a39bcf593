"""budcore.cost."""
