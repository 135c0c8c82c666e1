"""Sommelier prediction function: API Gateway (REST, Lambda proxy) -> this package."""
