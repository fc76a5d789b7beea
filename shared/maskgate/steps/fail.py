"""Workflow step Fail: record a caught error as the job's typed failure."""

from __future__ import annotations

from maskgate import crashpoints
from maskgate.contracts.job import JobError, JobStatus
from maskgate.contracts.steps import FailInput, JobRef
from maskgate.errors import InvalidTransition, error_type_for
from maskgate.observability import logger, metrics
from maskgate.stores.admission import Admission
from maskgate.stores.jobs import JobStore


def fail(step: FailInput, *, jobs: JobStore, admission: Admission) -> JobRef:
    """Record a caught workflow error as the job's typed failure (a finished job keeps its state),
    and give back the job's WaveSpeed slot (a no-op when it holds none)."""
    error = JobError(type=error_type_for(step.error.Error), message=step.error.message())
    # always: a prediction that failed through WaveSpeed's callback has its job failed already
    admission.release(step.job_id)
    try:
        jobs.transition(step.job_id, JobStatus.FAILED, error=error)
    except InvalidTransition:
        logger.info("job already finished; failure not recorded", extra={"error_type": error.type})
    else:
        metrics.add_metric(name="JobFailed", unit="Count", value=1)
        logger.info("job failed", extra={"error_type": error.type})
    crashpoints.reached("fail.after_record")
    return JobRef(job_id=step.job_id)
