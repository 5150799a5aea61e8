"""The commands of `edge-audio`, a module each (see runner.py for the pattern)."""
