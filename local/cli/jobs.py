"""``maskgate jobs`` and ``maskgate cancel``: list your jobs, newest first; cancel an unfinished one."""

from __future__ import annotations

import argparse
from datetime import datetime

from maskgate_local.cli.api import api_client, api_options, err, guarded, out
from maskgate_local.cli.client import Job, JobImage, redact

FILL_PAGES = 10  # pages read to fill one --limit screen of --status filtered jobs
STATUSES = ("awaiting_upload", "queued", "submitted", "processing", "succeeded", "failed", "canceled")


def _when(value: str | None) -> str:
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def _jobs(args: argparse.Namespace) -> int:
    """One screen of ``--limit`` jobs, or with ``--all`` every job. The API filters ``status`` after it
    reads a page, so a filtered page can come back short: without ``--all`` a few more pages fill it.
    ``--key`` keeps the jobs of one S3 upload (its key under uploads/, or the copy the job runs on)."""
    shown, pages = 0, 0
    more: str | None = None
    with api_client(args) as client:
        for page in client.pages(status=args.status, limit=args.limit, follow=True):
            pages += 1
            mine = [job for job in page["data"] if args.key is None or args.key in _keys(job)]
            for job in mine[: None if args.all or args.key else args.limit - shown]:
                if not shown:  # the header with the first row: an error or "no jobs" prints alone
                    out(f"{'id':<30} {'status':<15} {'source':<7} {'created (UTC)':<19}  {'error':<24} image")
                error = job.get("error")
                out(
                    f"{job['id']:<30} {job['status']:<15} {job['source']:<7} {_when(job['created_at']):<19}  "
                    f"{error['type'] if error else '-':<24} {_image(job)}"
                )
                shown += 1
            more = page["next_cursor"]
            if not args.all and not args.key and (shown >= args.limit or pages >= FILL_PAGES):
                break
    if more and not args.all and not args.key:
        err(f"{shown} job(s) shown; there are more: add --all")
    elif not shown:
        err("no jobs" if args.key is None else f"no job for the upload {args.key}")
        return 2 if args.key else 0
    return 0


def _keys(job: Job) -> set[str]:
    image: JobImage = job.get("image") or {}
    return {key for key in (image.get("upload_key"), image.get("key")) if key}


def _image(job: Job) -> str:
    """Where the job's image came from: the upload's key, else its URL (queries cut), else a data URI."""
    image: JobImage = job.get("image") or {}
    key = image.get("upload_key") or image.get("key")
    if key:
        return key
    url = image.get("url")
    if url:
        return redact(url)
    return "-"


def _cancel(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        job = client.cancel(args.job_id)
    out(f"{job['id']} {job['status']}")
    return 0


def add_jobs_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jobs`` and ``cancel`` to the ``maskgate`` subcommands."""
    api = api_options()
    jobs = commands.add_parser("jobs", parents=[api], help="list your jobs, newest first")
    jobs.add_argument("--status", choices=STATUSES)
    jobs.add_argument("--limit", type=int, default=20, help="jobs per page, 1-100 (default 20)")
    jobs.add_argument("--all", action="store_true", help="follow next_cursor through every page")
    jobs.add_argument(
        "--key", metavar="KEY", help="only the job of this S3 upload (e.g. uploads/cat.png); reads every page"
    )
    jobs.set_defaults(run=guarded(_jobs))

    cancel = commands.add_parser("cancel", parents=[api], help="cancel an unfinished job")
    cancel.add_argument("job_id", metavar="JOB_ID")
    cancel.set_defaults(run=guarded(_cancel))
