"""The end-to-end demo, and what tests and benchmarks share with it: a sample scene, a webhook receiver."""
