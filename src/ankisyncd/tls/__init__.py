"""Certificates: reading them (checks at start-up) and issuing them from a private CA.

Uses the ``cryptography`` library; imports nothing of ankisyncd but ``errors``.
"""
