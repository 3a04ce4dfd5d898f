"""Replay the charger side of a capture against a backend under test, and compare the answers."""
