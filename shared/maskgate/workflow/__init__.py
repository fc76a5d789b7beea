"""The Step Functions side: executions (start, stop, resume, list) and the timings they carry."""
