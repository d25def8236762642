"""Rules of the projection family."""
