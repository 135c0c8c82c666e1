"""Python client for the Sommelier API."""

from sommelier_client.client import ApiError, Client, find_connection

__all__ = ["ApiError", "Client", "find_connection"]
