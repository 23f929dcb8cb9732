"""The collection sync engine, one module per protocol step."""
