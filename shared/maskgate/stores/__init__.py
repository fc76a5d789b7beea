"""DynamoDB and S3 behind small classes: jobs, tenants, the bucket, admission, rate limits, idempotency."""
