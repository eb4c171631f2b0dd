"""A real MLflow tracking server for tests: `mlflow server` from PyPI, SQLite backend, artifacts
served by the server itself from a temp directory, on 127.0.0.1.

driftwatch never imports `mlflow` (it speaks the REST API, monitor/core/mlflowapi.py), and the full
`mlflow` package would bring a web stack and pins of its own into our environment, so it runs from a
virtual environment of its own (tests/infra/venvs.py). `mlflow==3.18.0` is the newest release but its
`mlflow-tracing==3.18.0` is not published yet on every index, so the pin is the newest complete one.

What a training pipeline does in MLflow (an experiment, a run with a tag and a logged artifact, a
registered model version, an alias) is done here through the same REST API (`/api/2.0/mlflow/...`,
artifacts through the server's `mlflow-artifacts` proxy), as MLflow's own client does it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from tests.infra.venvs import isolated_python
from tests.ports import free_port

MLFLOW = ("mlflow==3.17.2",)
API = "/api/2.0/mlflow"


class MlflowServer:
    """`mlflow server` on a fixed port (so a stopped server comes back at the same address)."""

    def __init__(self) -> None:
        self.python = isolated_python("mlflow-3.17.2", MLFLOW)
        self.root = Path(tempfile.mkdtemp(prefix="dw-mlflow-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = self.root / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(base_url=self.url, timeout=30)

    def start(self) -> MlflowServer:
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(self.python), "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                 "--artifacts-destination", str(self.root / "artifacts"), "--serve-artifacts", "--workers", "1"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited {self._proc.returncode}:\n{self.log_file.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"mlflow server did not answer /health:\n{self.log_file.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM and wait (the `--workers` child goes with its parent's process group)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the port must be closed before a test calls the server "down"
            try:
                httpx.get(f"{self.url}/health", timeout=1)
            except httpx.HTTPError:
                return
            time.sleep(0.2)

    def close(self) -> None:
        self.stop()
        self._http.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- what a training pipeline does, through the REST API ------------------------------------------

    def call(self, method: str, path: str, **kwargs: object) -> dict:
        resp = self._http.request(method, API + path, **kwargs)  # type: ignore[arg-type]
        resp.raise_for_status()
        return resp.json() if resp.content else {}

    def experiment(self, name: str) -> str:
        found = self._http.get(API + "/experiments/get-by-name", params={"experiment_name": name})
        if found.status_code == 200:
            return str(found.json()["experiment"]["experiment_id"])
        return str(self.call("POST", "/experiments/create", json={"name": name})["experiment_id"])

    def log_run(self, *, experiment: str = "training", artifacts: dict[str, bytes] | None = None,
                tags: dict[str, str] | None = None) -> str:
        """A finished run with `tags` and `artifacts` (path → bytes); its run id."""
        exp = self.experiment(experiment)
        run = self.call("POST", "/runs/create", json={"experiment_id": exp, "start_time": int(time.time() * 1000)})
        run_id = run["run"]["info"]["run_id"]
        for key, value in (tags or {}).items():
            self.call("POST", "/runs/set-tag", json={"run_id": run_id, "key": key, "value": value})
        for path, body in (artifacts or {}).items():
            resp = self._http.put(f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{run_id}/artifacts/{path}", content=body)
            resp.raise_for_status()
        self.call("POST", "/runs/update", json={"run_id": run_id, "status": "FINISHED",
                                                "end_time": int(time.time() * 1000)})
        return str(run_id)

    def register(self, name: str, run_id: str) -> str:
        """A new version of the registered model `name` from the run (the model created if new); its number."""
        if self._http.get(API + "/registered-models/get", params={"name": name}).status_code != 200:
            self.call("POST", "/registered-models/create", json={"name": name})
        run = self.call("GET", "/runs/get", params={"run_id": run_id})["run"]
        mv = self.call("POST", "/model-versions/create",
                       json={"name": name, "source": run["info"]["artifact_uri"] + "/model", "run_id": run_id})
        return str(mv["model_version"]["version"])

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.call("POST", "/registered-models/alias", json={"name": name, "alias": alias, "version": version})

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        mv = self.call("GET", "/model-versions/get", params={"name": name, "version": version})["model_version"]
        return {t["key"]: t["value"] for t in mv.get("tags", [])}
