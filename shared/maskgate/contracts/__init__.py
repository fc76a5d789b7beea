"""Every boundary model, no I/O: the prompts, the job, each step's input and output, S3's events."""
