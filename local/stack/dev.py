"""The local stack: moto provisioned from template.yaml, the real handlers in-process,
an API Gateway emulator, a WaveSpeed emulator and a control server for injected crashes, on loopback
ports. No AWS account, no Docker.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from maskgate.errors import Unauthorized
from maskgate.stores.bucket import UPLOAD_PREFIX
from maskgate.stores.tenants import TenantStore
from maskgate_local.emulator.app import WaveSpeedEmulator
from maskgate_local.stack import state
from maskgate_local.stack.aws import LocalAws
from maskgate_local.stack.control import ControlServer
from maskgate_local.stack.crashes import CrashRegistry
from maskgate_local.stack.gateway import ApiGatewayEmulator, FunctionError, Route
from maskgate_local.stack.provision import Provisioned, provision
from maskgate_local.stack.servers import RunningServer, free_port, serve_in_thread
from maskgate_local.stack.state import Restored

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
READY_LINE = "maskgate dev ready"
log = logging.getLogger("maskgate.dev")
GATEWAY_CONNECTIONS = 64  # the gateway's pool of connections to moto (boto3's default is 10)

# Template parameters for the local stack: timings in seconds so a job finishes in a few seconds.
LOCAL_PARAMETERS = {
    "Environment": "local",
    "PollInitialSeconds": "1",
    "PollMaxSeconds": "2",
    "JobDeadlineSeconds": "60",
    "LogLevel": "WARNING",
    "WaveSpeedOutputHosts": "127.0.0.1,localhost",
    "WebhookRetrySchedule": "1,1,1,1,1,1,1",
    # WaveSpeed admission stays on (the code path runs) but roomy: the emulator has no tiers
    "WaveSpeedConcurrency": "64",
    "WaveSpeedSubmitsPerMinute": "6000",
    "ReconcileGraceSeconds": "2",  # the sweep leaves a job alone this long after its last change
    "EndpointDisableAfterSeconds": "30",  # an endpoint failing this long is disabled (AWS: 5 days)
}


@dataclass(frozen=True)
class Ready:
    """What ``maskgate dev`` writes to its ready file."""

    api_url: str
    aws_endpoint_url: str
    region: str
    bucket: str
    upload_prefix: str
    api_key: str
    webhook_secret: str
    wavespeed_url: str
    control_url: str
    table: str
    state_machine_arn: str


@dataclass
class StackPorts:
    api: int = 3000
    aws: int = 5000
    wavespeed: int = 5100
    control: int = 0  # 0: any free port (the ready file names it)

    @classmethod
    def free(cls) -> StackPorts:
        return cls(api=free_port(), aws=free_port(), wavespeed=free_port())


@dataclass
class DevStack:
    ports: StackPorts = field(default_factory=StackPorts)
    region: str = "us-east-1"
    parameters: dict[str, str] = field(default_factory=dict)
    wavespeed_seed: int | None = None
    crash_seed: int | None = None  # None: the WaveSpeed seed, so one seed repeats a whole run
    aws: LocalAws | None = None
    crashes: CrashRegistry | None = None
    emulator: WaveSpeedEmulator | None = None
    provisioned: Provisioned | None = None
    state_dir: Path | None = None  # keep tables and objects here across restarts (saved at stop)
    restored: Restored | None = None  # what the start found in state_dir
    _ready: Ready | None = None
    _servers: list[RunningServer] = field(default_factory=list)
    _lambda_client: Any = None
    _lambda_lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Ready:
        """Start every part; return the endpoints and the seeded credentials."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Ready:
        api_url = f"http://127.0.0.1:{self.ports.api}"
        self.aws = LocalAws(port=self.ports.aws, region=self.region)
        self.aws.start()
        wavespeed_key = "ws_local_" + secrets.token_urlsafe(24)
        self.emulator = WaveSpeedEmulator(api_key=wavespeed_key, seed=self.wavespeed_seed)
        self._servers.append(serve_in_thread(self.emulator.app, port=self.ports.wavespeed))
        wavespeed_url = self._servers[-1].url
        control_url = self._start_control()
        self.provisioned = prov = provision(
            TEMPLATE,
            parameters=self.template_parameters(wavespeed_url),
            endpoint_url=self.aws.endpoint_url,
            region=self.region,
            environment_overrides={
                "MASKGATE_PUBLIC_API_URL": api_url,
                "MASKGATE_DOCS_ASSETS_URL": f"{control_url}/docs-assets",  # /docs renders offline
                "POWERTOOLS_METRICS_DISABLED": "true",
            },
        )
        self.aws.register(prov.functions.values())
        self.aws.client("secretsmanager").create_secret(
            Name=prov.parameters["WaveSpeedApiKeySecret"], SecretString=wavespeed_key
        )
        tenants = TenantStore(table=prov.table, client=self.aws.client("dynamodb"))
        tenant = prov.parameters["DefaultTenant"]
        if self.state_dir is not None:
            self.restored = self._load_state(self.aws, self.state_dir)
        api_key = self._saved_key(tenants) or tenants.create_key(tenant).key
        webhook_secret = tenants.webhook_secrets(tenant)[0]
        gateway = ApiGatewayEmulator(
            routes=[Route(r.method, r.path, r.function_name) for r in prov.routes],
            invoke=self._invoke,
            api_id=prov.api_id,
        )
        self._servers.append(serve_in_thread(gateway.app, port=self.ports.api))
        self._ready = Ready(
            api_url=api_url,
            aws_endpoint_url=self.aws.endpoint_url,
            region=self.region,
            bucket=prov.bucket,
            upload_prefix=UPLOAD_PREFIX,
            api_key=api_key,
            webhook_secret=webhook_secret,
            wavespeed_url=wavespeed_url,
            control_url=control_url,
            table=prov.table,
            state_machine_arn=prov.state_machine_arn,
        )
        return self._ready

    def _load_state(self, aws: LocalAws, directory: Path) -> Restored:
        """The saved tables and objects back in moto, without the S3 notifications of a new upload."""
        with aws.notifications_paused():
            restored = state.load(directory, dynamodb=aws.client("dynamodb"), s3=aws.client("s3"))
        log.info("restored %d items and %d objects from %s", restored.items, restored.objects, directory)
        return restored

    def _saved_key(self, tenants: TenantStore) -> str | None:
        """The API key of the restored state, if it is still valid (not revoked, not expired)."""
        key = self.restored.api_key if self.restored is not None else None
        if key is None:
            return None
        try:
            tenants.tenant_for_key(key)
        except Unauthorized:
            return None
        return key

    def save_state(self) -> None:
        """Write tables and objects to ``state_dir`` (a no-op without one, or before a full start)."""
        if self.state_dir is None or self.aws is None or self._ready is None:
            return
        state.save(
            self.state_dir,
            dynamodb=self.aws.client("dynamodb"),
            s3=self.aws.client("s3"),
            api_key=self._ready.api_key,
        )

    def template_parameters(self, wavespeed_url: str) -> dict[str, str]:
        """The local defaults, the emulator's URL, then the caller's ``parameters`` on top."""
        return {**LOCAL_PARAMETERS, "WaveSpeedBaseUrl": wavespeed_url, **self.parameters}

    def _start_control(self) -> str:
        seed = self.crash_seed if self.crash_seed is not None else self.wavespeed_seed
        self.crashes = CrashRegistry(seed=seed)
        self.crashes.install()
        self._servers.append(serve_in_thread(ControlServer(self.crashes).app, port=self.ports.control))
        return self._servers[-1].url

    def _invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        """The gateway's Lambda integration: a real Invoke through moto, dispatched in-process."""
        if self.aws is None:
            raise RuntimeError("the local stack is not running")
        response = self._lambda(self.aws).invoke(FunctionName=function_name, Payload=json.dumps(event))
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            raise FunctionError(f"{function_name} failed: {payload[:500]!r}")
        return json.loads(payload) if payload else None

    def _lambda(self, aws: LocalAws) -> Any:
        """One Lambda client for every request of the gateway (boto3 clients are thread-safe; building one
        per request cost more than the invoke), with a connection per request in flight."""
        with self._lambda_lock:
            if self._lambda_client is None:
                self._lambda_client = aws.client("lambda", max_pool_connections=GATEWAY_CONNECTIONS)
            return self._lambda_client

    def stop(self) -> None:
        """Stop every part (safe to call twice, and after a failed start)."""
        for server in self._servers:  # all at once: each takes up to one tick of its loop to notice
            server.ask_to_stop()
        while self._servers:
            self._servers.pop().stop()
        if self.emulator is not None:
            self.emulator.close()
            self.emulator = None
        if self.crashes is not None:
            self.crashes.uninstall()
            self.crashes = None
        self._lambda_client = None
        try:
            self.save_state()  # after the gateway stopped taking requests, before moto goes
        except Exception:  # the stack still stops; the previous snapshot stays whole
            log.exception("could not save the local stack's state to %s", self.state_dir)
        self._ready = None
        if self.aws is not None:
            self.aws.stop()
            self.aws = None


def remove_ready_file(path: Path, ready: Ready) -> None:
    """Remove the ready file if it still describes this stack (another stack may have written it since)."""
    try:
        ours = json.loads(path.read_text()) == json.loads(json.dumps(asdict(ready)))
    except (OSError, ValueError):
        return
    if ours:
        path.unlink(missing_ok=True)


def write_ready_file(path: Path, ready: Ready) -> None:
    """Write the ready file atomically (readers never see half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(asdict(ready), indent=2) + "\n")
    partial.replace(path)
