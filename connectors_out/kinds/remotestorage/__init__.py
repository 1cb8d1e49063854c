"""remoteStorage: found by WebFinger, authorized with the implicit grant in the customer's browser."""
