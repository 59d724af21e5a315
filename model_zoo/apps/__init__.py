"""Applications: what a user does with the library (generate synthetic worlds, ...)."""
