"""``maskgate show``: one job: its status, masks and what it found (each instance's box and area)."""

from __future__ import annotations

import argparse
import json

from maskgate_local.cli.api import api_client, api_options, guarded, out
from maskgate_local.cli.client import Instance, Job, MaskgateClient


def _instances(client: MaskgateClient, job: Job) -> list[Instance] | None:
    """The job's instances: shown inline, or read from instances.json when there are too many."""
    inline = job.get("instances")
    if inline is not None:
        return inline
    results = job.get("results")
    if results and results["instances_url"]:
        document = json.loads(client.download(results["instances_url"]))
        found: list[Instance] = document["instances"]
        return found
    return None


def _found_line(job: Job) -> str | None:
    results = job.get("results")
    if not results:
        return None
    if results["unavailable"]:
        return f"instances: unavailable: {results['unavailable']['message']}"
    count = results["instance_count"]
    if count is None:
        return f"instances: not made (outputs: {', '.join(results['outputs'])})"
    return "instances: nothing found" if count == 0 else f"instances: {count} found"


def _show(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        job = client.get_job(args.job_id)
        out(f"{job['id']} {job['status']}")
        error = job.get("error")
        if error:
            out(f"error: {error['type']}: {error['message']}")
        if job["status"] != "succeeded":
            return 0
        out(f"masks: {len(job['masks'])}")
        line = _found_line(job)
        if line:
            out(line)
        instances = _instances(client, job) or []
    if instances:
        out(f"  {'#':>4} {'mask':>4}  {'bbox [x, y, w, h]':<24} {'area':>10}  centroid")
        for i in instances:
            bbox = "[" + ", ".join(str(v) for v in i["bbox"]) + "]"
            centroid = f"({i['centroid'][0]}, {i['centroid'][1]})"
            out(f"  {i['index']:>4} {i['mask_index']:>4}  {bbox:<24} {i['area']:>10,}  {centroid}")
    return 0


def add_show_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``show`` to the ``maskgate`` subcommands."""
    show = commands.add_parser(
        "show", parents=[api_options()], help="show one job: status, masks, instances with boxes and areas"
    )
    show.add_argument("job_id", metavar="JOB_ID")
    show.set_defaults(run=guarded(_show))
