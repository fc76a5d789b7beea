"""The result cache: an identical request on identical image bytes reuses an earlier job's results.

``key`` names a request (pure); ``entries`` keeps, per tenant and key, which job computes or computed
it (DynamoDB); ``reuse`` decides at Submit whether a job is a hit, waits for an identical job in
flight, or computes itself (a miss).
"""
