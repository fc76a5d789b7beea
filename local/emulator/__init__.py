"""The WaveSpeed emulator: a faithful stand-in for the hosted SAM3 API, with real masks and faults."""
