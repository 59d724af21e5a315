"""Applications of the zoo: command-line entry points built on the library (the library never imports them)."""
