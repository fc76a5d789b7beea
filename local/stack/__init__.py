"""The local stack: moto provisioned from template.yaml, the real handlers in-process, and emulators."""
