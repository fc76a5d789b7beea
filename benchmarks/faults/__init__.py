"""The fault run: jobs under every emulator fault, crash point and hostile receiver, and its invariants."""
