"""Fixtures for the client tests; helpers are in client_lib.py."""
from client_lib import clients  # noqa: F401  (the shared fixture)
