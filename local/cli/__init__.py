"""The maskgate command: dev and demo, the API commands, and the operator commands keys and reconcile."""
