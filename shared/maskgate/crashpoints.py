"""Named crash points: the places where a step's side effect is done and not yet recorded.

Each step calls ``reached("<function>.<point>")`` right after a side effect that a crash must not
lose or repeat (WaveSpeed accepted a prediction, masks are in S3, a webhook was delivered). In AWS
nothing is installed and the call is one global read. The local stack installs a hook that, at the
rate set for the point, ends the invocation there as the Lambda runtime would after a timeout
(``Sandbox.Timedout``), so the workflow's real Retry and Catch decide what happens next and the
tests can show that nothing is paid twice or lost.
"""

from __future__ import annotations

from collections.abc import Callable

POINTS: dict[str, str] = {
    "submit.after_post": "WaveSpeed accepted the prediction; its id is not recorded yet",
    "submit.after_record": "the prediction id is recorded on the job; the invocation has not returned",
    "store.after_masks": "the masks are in S3; the job is not marked succeeded yet",
    "store.after_succeeded": "the job is succeeded; its webhook's first attempt is not made yet",
    "notify.after_send": "the webhook was sent; the attempt is not recorded yet",
    "fail.after_record": "the job's failure is recorded; the invocation has not returned",
    "on_upload.after_job": "the upload's job is written; its workflow is not started yet",
    "api.after_job": "the API request's job is written; its workflow is not started yet",
    "callback.after_mark": "the callback was acted on and marked handled; no answer sent yet",
}

Hook = Callable[[str], None]
_hook: Hook | None = None


def install(hook: Hook | None) -> None:
    """Set (or with None remove) the function called at every crash point: the local stack's."""
    global _hook
    _hook = hook


def reached(point: str) -> None:
    """Mark that the invocation has passed ``point``; the installed hook may end it here."""
    if point not in POINTS:
        raise ValueError(f"unknown crash point {point!r}")
    if _hook is not None:
        _hook(point)
