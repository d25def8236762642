"""Rules of the symbolic family."""
