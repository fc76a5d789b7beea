"""Webhook delivery units: each (job, event, target) delivery after a failed first attempt, and each
tenant event's (``endpoint.disabled``) to an endpoint, is its own small state machine execution,
named after the webhook-id (and the endpoint's id), that waits on
the retry schedule (honouring ``Retry-After``), attempts, and ends delivered, refused, or in the
dead-letter queue.

Being separate from the job's execution, a unit survives the job's end (or its cancellation), and
the same mechanism serves redelivery.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from maskgate.contracts.job import DeliveryAttempt
from maskgate.contracts.steps import DeliveryStep
from maskgate.errors import NotConfigured
from maskgate.webhooks.schedule import DEFAULT_SCHEDULE

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_stepfunctions.client import SFNClient


@dataclass(frozen=True)
class DeliveryUnits:
    """Starts delivery units and dead-letters exhausted deliveries."""

    state_machine_arn: str
    stepfunctions: SFNClient
    schedule: tuple[int, ...] = DEFAULT_SCHEDULE
    sqs: SQSClient | None = None
    dead_letter_url: str | None = None

    def start(
        self,
        *,
        name: str,
        event: str,
        step: int,
        wait_seconds: int,
        job_id: str | None = None,
        endpoint_id: str | None = None,
        message_id: str | None = None,
    ) -> bool:
        """Start a unit (idempotent by ``name``) for a job's event or, by ``message_id``, a kept
        tenant event; False if one of that name already ran."""
        unit = DeliveryStep(
            job_id=job_id,
            message_id=message_id,
            event=event,
            step=step,
            wait_seconds=wait_seconds,
            endpoint_id=endpoint_id,
        )
        try:
            self.stepfunctions.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=unit.model_dump_json()
            )
        except self.stepfunctions.exceptions.ExecutionAlreadyExists:
            return False
        return True

    def dead_letter(self, *, job_id: str | None, event: str, webhook_id: str, last: DeliveryAttempt) -> None:
        """Keep an exhausted delivery, with enough to replay it, in the dead-letter queue."""
        if self.sqs is None or not self.dead_letter_url:
            raise NotConfigured("MASKGATE_WEBHOOK_DLQ_URL is not set; exhausted deliveries cannot be kept")
        replay = (
            f"POST /v1/segmentations/{job_id}/deliveries"
            if job_id is not None
            else f"POST /v1/webhook-endpoints/{last.endpoint_id}/messages/{webhook_id}/resend"
        )
        message = {
            "job_id": job_id,
            "event": event,
            "webhook_id": webhook_id,
            "endpoint_id": last.endpoint_id,
            "last_attempt": json.loads(last.model_dump_json()),
            "redeliver": replay,
        }
        self.sqs.send_message(QueueUrl=self.dead_letter_url, MessageBody=json.dumps(message))
