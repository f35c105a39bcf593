"""Migration revisions, oldest first: ``0001_initial`` then ``0002_admission``."""
