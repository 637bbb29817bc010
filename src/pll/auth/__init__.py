"""Tokens, roles and the access decided once per request."""
