"""Users: the auth database, password hashes and host keys."""
