"""Local object-store servers for tests: ``moto_server`` (S3, SageMaker, ... over HTTP) and
``gcp-storage-emulator`` (GCS JSON API), each a subprocess on 127.0.0.1 stopped by its PID.

A server can be stopped and started again on the same port (a storage outage). The GCS emulator
keeps its objects in a folder, so they survive the restart; moto keeps state in memory only.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A local server subprocess: ``start()``, ``stop()``, ``url``; health-checked on start."""

    name = "server"
    health_path = "/"

    def __init__(self, workdir: Path, port: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 60) -> ServerProcess:
        exe = Path(self.command()[0])
        if not exe.exists():
            raise RuntimeError(f"{exe.name} is not installed in {BIN} (make install installs the dev extra)")
        self._log = open(self.workdir / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + self.health_path, timeout=1):
                    return self
            except urllib.error.HTTPError:
                return self  # it answers
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.workdir / f"{self.name}.log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"{self.name} did not start on port {self.port}:\n{log}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class MotoServer(ServerProcess):
    name = "moto_server"
    health_path = "/moto-api/"

    def command(self) -> list[str]:
        return [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]

    def connection(self) -> dict:
        """An Airflow ``aws`` connection (dummy credentials) pointing at this server."""
        return {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": self.url, "region_name": "us-east-1"},
        }

    def client(self, service: str = "s3"):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def new_bucket(self, prefix: str = "mlops") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.client("s3").create_bucket(Bucket=name)
        return name


class GcsEmulator(ServerProcess):
    """``gcp-storage-emulator`` with its objects on disk (they survive a stop/start)."""

    name = "gcp-storage-emulator"
    health_path = "/storage/v1/b"

    def command(self) -> list[str]:
        return [
            str(BIN / "gcp-storage-emulator"),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--default-bucket",
            "mlops-default",
        ]

    def connection(self) -> dict:
        """An Airflow ``google_cloud_platform`` connection: anonymous, the emulator as endpoint."""
        return {
            "conn_type": "google_cloud_platform",
            "extra": {"is_anonymous": True, "project": "test-project", "gcs.endpoint": self.url},
        }

    def new_bucket(self, prefix: str = "mlops") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        req = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=test-project",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10):
            pass
        return name
