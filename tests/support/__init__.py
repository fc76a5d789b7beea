"""Test support: fakes for the outside (WaveSpeed, webhook receivers) and loaders for real artefacts."""
