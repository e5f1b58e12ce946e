"""Read an offline W&B run back with W&B's own reader.

wandb >= 0.30 dropped the Python reader of ``.wandb`` transaction logs; the reader W&B ships is
``wandb leet inspect`` (in the wandb-core binary). ``--json`` prints every record as one JSON object
per line, ``--summary --json`` the run's folded state (config, summary, exit code). This module runs
both with the current interpreter's wandb and turns the output into an ``OfflineRun``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biollm_core.errors import UserError

_INSPECT_TIMEOUT_S = 120


@dataclass(frozen=True)
class ArtifactRecord:
    """One ``log_artifact`` call as stored in the transaction log."""

    name: str
    type: str
    aliases: list[str]
    files: list[str]  # paths inside the artifact
    local_paths: list[str]  # where the files wait for `wandb sync`


@dataclass
class OfflineRun:
    """What an offline run holds, as W&B itself reads it."""

    wandb_file: Path
    run_id: str
    name: str
    project: str
    group: str
    job_type: str
    tags: list[str]
    state: str  # "finished", "running" (no exit record yet), ...
    exit_code: int | None
    config: dict[str, Any]
    summary: dict[str, Any]
    history: list[dict[str, Any]]  # one dict per run.log call, W&B's own keys (_step, _runtime) included
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # run files saved (media, requirements.txt, ...)

    def metric_by_step(self, name: str, step_key: str = "step") -> dict[int, Any]:
        """``{step: value}`` of one metric, keyed by our ``step`` (not W&B's internal ``_step``)."""
        return {int(row[step_key]): row[name] for row in self.history if name in row and step_key in row}

    def artifact(self, name: str) -> ArtifactRecord:
        """The last logged version of the artifact ``name``."""
        matches = [artifact for artifact in self.artifacts if artifact.name == name]
        if not matches:
            raise KeyError(f"no artifact {name!r}; logged: {sorted({a.name for a in self.artifacts})}")
        return matches[-1]


def find_wandb_files(root: Path) -> list[Path]:
    """Every offline run's ``.wandb`` file under ``root`` (any depth), oldest run folder first."""
    return sorted(root.rglob("offline-run-*/run-*.wandb"), key=lambda path: path.parent.name)


def _inspect(wandb_file: Path) -> tuple[str, str]:
    """(``--json --summary`` output, ``--json`` output); the two readers run side by side."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_ERROR_REPORTING": "false"}
    base = [sys.executable, "-m", "wandb", "leet", "inspect", "--json"]
    commands = [[*base, "--summary", str(wandb_file)], [*base, str(wandb_file)]]
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for c in commands]
    outputs = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=_INSPECT_TIMEOUT_S)
            if process.returncode != 0:
                raise UserError(f"{wandb_file}: `wandb leet inspect` failed (exit {process.returncode}): "
                                f"{stderr.strip()}")
            outputs.append(stdout)
    finally:
        for process in processes:
            if process.poll() is None:  # timed out, or its sibling failed
                process.kill()
                process.communicate()
    return outputs[0], outputs[1]


def read_offline_run(path: Path) -> OfflineRun:
    """Read a run folder (``offline-run-*``) or its ``.wandb`` file."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("run-*.wandb"))
        if len(candidates) != 1:
            raise UserError(
                f"{path}: expected one run-*.wandb file in an offline run folder, found {len(candidates)}"
            )
        path = candidates[0]
    if not path.is_file():
        raise UserError(f"{path}: no such W&B transaction log")
    summary_output, records_output = _inspect(path)
    folded = json.loads(summary_output)
    run_record: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    artifacts: list[ArtifactRecord] = []
    files: list[str] = []
    for line in records_output.splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        kind = record.get("type")
        if kind == "run":
            run_record = record["run"]
        elif kind == "history":
            history.append(record["history"].get("item", {}))
        elif kind == "artifact":
            artifact = record["artifact"]
            contents = artifact.get("manifest", {}).get("contents", [])
            artifacts.append(ArtifactRecord(
                name=artifact["name"], type=artifact["type"], aliases=list(artifact.get("aliases", [])),
                files=[entry["path"] for entry in contents],
                local_paths=[entry.get("local_path", "") for entry in contents],
            ))
        elif kind == "files":
            files.extend(entry["path"] for entry in record["files"].get("files", []))
    return OfflineRun(
        wandb_file=path,
        run_id=folded.get("run_id", run_record.get("run_id", "")),
        name=folded.get("name", run_record.get("display_name", "")),
        project=folded.get("project", run_record.get("project", "")),
        group=run_record.get("run_group", ""),
        job_type=run_record.get("job_type", ""),
        tags=list(folded.get("tags") or run_record.get("tags", [])),
        state=folded.get("state", ""),
        exit_code=folded.get("exit_code"),
        config=folded.get("config", {}),
        summary=folded.get("summary", {}),
        history=history,
        artifacts=artifacts,
        files=files,
    )
