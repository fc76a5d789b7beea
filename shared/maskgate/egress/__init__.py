"""Outbound calls to addresses callers chose: the URL check, and clients pinned to what it checked."""
