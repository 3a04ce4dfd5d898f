"""Simulated OCPP 1.6-J chargers with behaviour profiles, driven over real WebSockets."""
