"""Rules of the conflicts family."""
