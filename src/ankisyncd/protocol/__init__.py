"""The sync protocol's vocabulary: versions, methods, messages. No I/O happens here."""
