"""Solid pods: JSON-LD and Turtle over LDP, Solid-OIDC client credentials with DPoP."""
