"""Interoperability tests against independent peers (``pytest -m peers``); see tests/peers/peers.py."""
