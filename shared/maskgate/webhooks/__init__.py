"""Webhooks to callers: signing (pure), the event body, one delivery attempt, the retry schedule and units."""
