"""One exception tree for everything maskgate raises on purpose.

The class names are the workflow's contract: ``statemachine/segmentation.asl.json`` retries and
catches them by name (``ErrorEquals``), and ``type`` is the stable error type (the README's error
table) that a failed job, a webhook and an API problem document carry.

    MaskgateError                      internal_error (500)
    ├── RequestError (422)             the caller's payload or image
    │   ├── InvalidRequest             invalid_request
    │   ├── MissingPrompt              missing_prompt
    │   ├── InvalidImage               invalid_image
    │   │   └── UploadChanged          invalid_image (the upload was written again while it was read)
    │   ├── ImageTooLarge              image_too_large
    │   ├── EndpointLimit              invalid_request (a tenant's endpoints are capped)
    │   └── UrlNotAllowed              url_not_allowed
    ├── Missing                        not_found (404): what a store was asked for is not there
    │   ├── JobNotFound                no such job
    │   ├── ObjectNotFound             no such object in the bucket
    │   ├── KeyNotFound                the tenant has no API key with that id
    │   ├── EndpointNotFound           the tenant has no webhook endpoint with that id
    │   └── EventNotFound              no kept tenant event with that webhook-id
    ├── ApiError                       HTTP-only
    │   ├── MalformedJson              malformed_json (400)
    │   ├── Unauthorized               unauthorized (401)
    │   ├── NotFound                   not_found (404)
    │   ├── MethodNotAllowed           method_not_allowed (405, with Allow)
    │   ├── Conflict                   conflict (409)
    │   ├── PayloadTooLarge            payload_too_large (413)
    │   ├── RateLimited                rate_limited (429, with Retry-After)
    │   ├── QuotaExceeded              quota_exceeded (429, with Retry-After: a tenant quota is full)
    │   └── SpendCapReached            spend_cap_reached (402: the month's spend cap is reached)
    ├── Retryable                      transient: the workflow retries these by name
    │   ├── UpstreamRateLimited        upstream_unavailable (429; surely did not land)
    │   ├── UpstreamUnavailable        upstream_unavailable (connect error, 503, poll 5xx)
    │   ├── AdmissionDeferred          upstream_unavailable (our own WaveSpeed tier limit is reached)
    │   │   └── QuotaDeferred          quota_exceeded (the tenant's quota is full: the job waits queued)
    │   ├── ResultPending              upstream_unavailable (an identical job is in flight: wait for
    │   │                              its results rather than pay again)
    │   └── PredictionNotReady         upstream_unavailable (read back as unfinished: WaveSpeed lags)
    ├── AdmissionQueued                upstream_unavailable; workflow routing: every WaveSpeed slot is
    │                                  taken, the job waits in the fair line (AwaitSlot) until woken
    ├── UpstreamOutcomeUnknown         upstream_outcome_unknown (a submit that may have landed and
    │                                  whose prediction never showed itself: never submitted again)
    ├── UpstreamRejected               upstream_rejected (400 or bad credentials)
    ├── UpstreamFailed                 upstream_failed (the prediction ended failed)
    ├── PredictionTimedOut             timeout
    ├── OutputInvalid                  output_invalid
    ├── NotSubmitted                   internal_error; workflow routing: no submit is under way, so
    │                                  back to Submit (never a job's final error)
    ├── JobNotSubmittable              invalid_request; the job is finished or has nothing to submit:
    │                                  skip to Notify
    ├── ResultReused                   internal_error; workflow routing: the job succeeded with an
    │                                  identical earlier job's results, skip to Notify (never an error)
    ├── JobCanceled                    canceled
    ├── NotConfigured                  internal_error: a setting this function needs is missing or invalid
    └── InvalidTransition              conflict: a conditional status write lost (never leaves a step)

Everything else a Task can end with (``Sandbox.Timedout``, ``Lambda.Unknown``, a throttled AWS call)
is transient to the workflow: retried, never a job's final error (the README's error-routing table).
"""

from __future__ import annotations

from typing import ClassVar


class MaskgateError(Exception):
    """Base of every error maskgate raises on purpose."""

    type: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, message: str, *, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class RequestError(MaskgateError):
    """The caller's request, payload or image is not acceptable."""

    status = 422


class InvalidRequest(RequestError):
    type = "invalid_request"
    title = "Invalid request"


class MissingPrompt(RequestError):
    type = "missing_prompt"
    title = "Missing prompt"


class InvalidImage(RequestError):
    type = "invalid_image"
    title = "Invalid image"


class UploadChanged(InvalidImage):
    """The upload's key was written again between the HEAD and the read or copy (412)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the upload {key} changed while it was validated (it was written again)")


class ImageTooLarge(RequestError):
    type = "image_too_large"
    title = "Image too large"


class EndpointLimit(RequestError):
    type = "invalid_request"
    title = "Too many webhook endpoints"


class UrlNotAllowed(RequestError):
    type = "url_not_allowed"
    title = "URL not allowed"


class Missing(MaskgateError):
    """What a store was asked for is not there. Raised below the API (steps and stores); the API
    answers it 404 ``not_found``, a workflow Task retries it like any unexpected error."""

    type = "not_found"
    status = 404
    title = "Not found"


class JobNotFound(Missing):
    """No job with this id."""


class ObjectNotFound(Missing):
    """No object with this key in the bucket."""


class KeyNotFound(Missing):
    """The tenant has no API key with this id."""


class EndpointNotFound(Missing):
    """The tenant has no webhook endpoint with this id."""


class EventNotFound(Missing):
    """No kept tenant event (one about no job, e.g. ``endpoint.disabled``) with this webhook-id."""


class ApiError(MaskgateError):
    """Errors that exist only over HTTP."""


class MalformedJson(ApiError):
    type = "malformed_json"
    status = 400
    title = "Malformed JSON"


class Unauthorized(ApiError):
    type = "unauthorized"
    status = 401
    title = "Unauthorized"


class NotFound(ApiError):
    """No such route, link or resource, answered by the API itself."""

    type = "not_found"
    status = 404
    title = "Not found"


class MethodNotAllowed(ApiError):
    type = "method_not_allowed"
    status = 405
    title = "Method not allowed"


class Conflict(ApiError):
    type = "conflict"
    status = 409
    title = "Conflict"


class PayloadTooLarge(ApiError):
    type = "payload_too_large"
    status = 413
    title = "Payload too large"


class RateLimited(ApiError):
    type = "rate_limited"
    status = 429
    title = "Rate limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceeded(ApiError):
    """A tenant quota (jobs in flight, per minute, per day) is full: nothing was created."""

    type = "quota_exceeded"
    status = 429
    title = "Quota exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SpendCapReached(ApiError):
    """The job's price does not fit under the tenant's monthly spend cap: nothing was created."""

    type = "spend_cap_reached"
    status = 402
    title = "Spend cap reached"

    def __init__(self, message: str, *, cap_usd: float, month_spend_usd: float, month: str) -> None:
        super().__init__(message)
        self.extensions = {"cap_usd": cap_usd, "month_spend_usd": month_spend_usd, "month": month}


class Retryable(MaskgateError):
    """Transient: the workflow may retry it."""

    type = "upstream_unavailable"


class UpstreamRateLimited(Retryable):
    title = "WaveSpeed rate limit"


class UpstreamUnavailable(Retryable):
    title = "WaveSpeed unavailable"


class AdmissionDeferred(Retryable):
    """The account's WaveSpeed tier is fully used (maskgate.stores.admission): nothing was sent; try later."""

    title = "WaveSpeed capacity in use"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaDeferred(AdmissionDeferred):
    """A job that came through S3 does not fit the tenant's quotas yet: it waits queued (the workflow
    retries it as it retries AdmissionDeferred) and fails quota_exceeded if it never fits."""

    type = "quota_exceeded"
    title = "Quota exceeded"


class AdmissionQueued(MaskgateError):
    """Every WaveSpeed slot is taken: the job waits in line (maskgate.stores.admission) until a
    released slot is handed to it and it is woken; nothing was sent."""

    type = "upstream_unavailable"
    title = "Waiting for a WaveSpeed slot"


class ResultPending(Retryable):
    """An identical request on the same image is in flight (maskgate.cache): nothing was sent; its
    results are reused once it succeeds, or this job computes its own if it does not."""

    title = "An identical job is in flight"


class PredictionNotReady(Retryable):
    """A prediction read back as unfinished where it should be done (WaveSpeed's result API can lag
    its own callback): read it again later."""

    title = "The prediction is not ready yet"


class UpstreamOutcomeUnknown(MaskgateError):
    """A submit that may have reached WaveSpeed. Its job is never submitted again: the prediction is
    adopted when its callback (or a lookup) shows it, and the job fails with this type only when it
    never does, by the deadline."""

    type = "upstream_outcome_unknown"
    title = "WaveSpeed outcome unknown"


class UpstreamRejected(MaskgateError):
    type = "upstream_rejected"
    title = "WaveSpeed rejected the request"


class UpstreamFailed(MaskgateError):
    type = "upstream_failed"
    title = "The prediction failed"


class PredictionTimedOut(MaskgateError):
    type = "timeout"
    title = "The prediction did not finish in time"


class OutputInvalid(MaskgateError):
    type = "output_invalid"
    title = "WaveSpeed returned an invalid output"


class NotSubmitted(MaskgateError):
    """Poll found no submit under way (none was made, or the last surely did not land): the workflow
    goes back to Submit. Never a job's final error."""

    title = "The job has not been submitted"


class JobNotSubmittable(MaskgateError):
    """The job is finished (failed at intake, canceled) or holds nothing to submit: the workflow skips
    to Notify. Its class name is the workflow's Catch contract; its type is the one it always had."""

    type = "invalid_request"
    title = "The job was rejected at intake"


class ResultReused(MaskgateError):
    """The job succeeded from the result cache (no WaveSpeed call): the workflow skips to Notify.
    Workflow routing only, never a job's final error."""

    title = "Results reused"


class JobCanceled(MaskgateError):
    type = "canceled"
    title = "The job was canceled"


class NotConfigured(MaskgateError):
    """A setting the function needs is missing or invalid (its environment variable is named)."""


class InvalidTransition(MaskgateError):
    """A conditional status write lost: the job is not in a state that allows it."""

    type = "conflict"


def _subclasses(cls: type[MaskgateError]) -> list[type[MaskgateError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


ERRORS_BY_NAME: dict[str, type[MaskgateError]] = {c.__name__: c for c in _subclasses(MaskgateError)}

# Errors Step Functions itself raises, as the job error type they mean.
_STATES_ERRORS = {"States.Timeout": "timeout", "States.HeartbeatTimeout": "timeout"}


def error_type_for(name: str) -> str:
    """The job error type for a workflow error name (an exception class or a States.* error)."""
    if name in ERRORS_BY_NAME:
        return ERRORS_BY_NAME[name].type
    return _STATES_ERRORS.get(name, MaskgateError.type)
