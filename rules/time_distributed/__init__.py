"""Rules of the time distributed family."""
