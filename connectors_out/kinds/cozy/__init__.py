"""Cozy: an OAuth client registered at the customer's Cozy, documents and files through its API."""
