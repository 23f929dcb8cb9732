"""Conversion between the legacy (schema 11) JSON that sync carries and schema-18 rows."""
