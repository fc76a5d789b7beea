"""maskgate on this machine, not in the layer: the local stack, its emulators, the demo, the CLI."""
