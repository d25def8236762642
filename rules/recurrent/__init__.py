"""Rules of the recurrent family."""
