"""``WandbSink``: one trial tracked as one W&B run (a ``MetricsSink``; the engine never imports wandb).

What a run holds: the config given (seed, mode and every grid axis are keys of it), one history row
per ``log_metrics`` call with every metric plotted against our ``step`` (``define_metric("*",
step_metric="step")``), the summary, the artifacts ``config-<run id>`` (validated_config.json),
``metadata-<run id>`` (run_metadata.json) and ``model-<run id>`` (one version per checkpoint,
aliases ``latest`` and ``step-N``, plus ``final`` for the last).

Files. The run lives in ``<out_dir>/wandb/`` (offline: ``offline-run-*``), and so do the files its
artifacts point at: ``<out_dir>/wandb/artifact-staging/``. Checkpoint files are hard-linked there
(copied across file systems), so pruning old checkpoints never breaks a later ``wandb sync``
and costs no disk while both names exist. W&B's default would stage them in ``~/.local/share/wandb``,
outside the sweep directory. Online, the staging folder is removed once ``finish`` has uploaded it.

Credentials. The config, the summary and the two JSON files pass through ``secrets.redact``;
W&B itself writes no API key into the run folder (a test checks every byte under the output dir).
Console capture is off: a trial's output is already captured by Ray, and a second copy in the run
folder could carry whatever a library prints.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import wandb

from biollm_core.config.schema import LoggingConfig
from biollm_core.redaction import redact
from biollm_platform.tracking.mode import ModeResolution, resolve_wandb_mode, run_settings

logger = logging.getLogger(__name__)

RUN_ID_FILE = "biollm-run-id"  # in <out_dir>/wandb/: the run id a resumed trial reuses
STAGING_DIR = "artifact-staging"
RUN_FILES = (("validated_config.json", "config"), ("run_metadata.json", "metadata"))


def _link_or_copy_tree(source: Path, destination: Path) -> None:
    """Mirror ``source`` into a new ``destination``: hard links where possible, copies otherwise."""
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        target = destination / file.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(file, target)
        except OSError:  # another file system, or links not supported
            shutil.copy2(file, target)


def _unique_dir(parent: Path, name: str) -> Path:
    candidate, counter = parent / name, 1
    while candidate.exists():
        candidate, counter = parent / f"{name}-{counter}", counter + 1
    return candidate


class WandbSink:
    """Track one trial as one W&B run; see the module docstring for what is logged and where.

    ``mode`` goes through ``resolve_wandb_mode`` (WANDB_MODE wins; online without WANDB_API_KEY logs
    offline with a warning; ``disabled`` makes no W&B call and writes no file). ``resume`` (allow, must,
    auto) keeps the run id in ``<out_dir>/wandb/biollm-run-id`` so a later attempt continues the run.
    Build it on rank 0 only: ``wandb_sink_from_config`` returns None on other ranks.
    """

    def __init__(
        self,
        *,
        project: str,
        run_name: str,
        out_dir: Path,
        entity: str | None = None,
        mode: str = "offline",
        directory: str | None = None,
        group: str | None = None,
        tags: Sequence[str] = (),
        resume: str | None = None,
        config: Mapping[str, Any] | None = None,
        log_checkpoints: bool = True,
        job_type: str = "train",
    ) -> None:
        self.out_dir = Path(out_dir)
        self.log_checkpoints = log_checkpoints
        self.checkpoint_bytes = 0  # bytes of checkpoint artifacts logged by this sink
        self.resolution: ModeResolution = resolve_wandb_mode(mode, os.environ)
        if self.resolution.warning:
            logger.warning(self.resolution.warning)
        self._files_logged = False
        self._summary_logged = False
        self._closed = False
        self.run: Any = None  # wandb.Run; None when disabled
        if self.resolution.mode == "disabled":
            return  # disabled writes nothing at all
        wandb_dir = self.out_dir / "wandb"
        wandb_dir.mkdir(parents=True, exist_ok=True)
        self._staging = wandb_dir / STAGING_DIR
        if directory:
            Path(directory).mkdir(parents=True, exist_ok=True)  # W&B falls back to a temp dir otherwise
        self.run = wandb.init(
            project=project,
            entity=entity,
            name=run_name,
            group=group,
            tags=list(tags),
            job_type=job_type,
            config=redact(dict(config or {})),
            dir=directory or str(self.out_dir),
            mode=self.resolution.mode,
            resume=resume,
            id=self._resume_id(wandb_dir) if resume and resume != "never" else None,
            settings=wandb.Settings(console="off", reinit="create_new"),
        )
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")

    @property
    def run_dir(self) -> Path | None:
        """This run's folder (``<out_dir>/wandb/offline-run-...`` offline), or None when disabled."""
        return None if self.run is None else Path(self.run.dir).parent

    @staticmethod
    def _resume_id(wandb_dir: Path) -> str:
        """The run id stored by an earlier attempt of this trial, or a new one (stored for the next)."""
        id_file = wandb_dir / RUN_ID_FILE
        if id_file.is_file() and id_file.read_text().strip():
            return id_file.read_text().strip()
        run_id = uuid.uuid4().hex[:8]  # W&B's own ids are 8 base-36 characters
        id_file.write_text(run_id + "\n")
        return run_id

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        if self.run is None:
            return
        self.run.log({**metrics, "step": int(step)})

    def log_checkpoint(self, step: int, path: Path, final: bool) -> None:
        if self.run is None or not self.log_checkpoints:
            return
        staged = _unique_dir(self._staging, Path(path).name + ("-final" if final else ""))
        _link_or_copy_tree(Path(path), staged)
        size = sum(file.stat().st_size for file in staged.rglob("*") if file.is_file())
        self.checkpoint_bytes += size
        logger.info(
            "W&B: checkpoint of step %d logged as artifact model-%s (%.1f MiB; %.1f MiB so far); "
            "logging.wandb_log_checkpoints=false (sweeps: wandb: {log_checkpoints: false}) keeps checkpoints on disk only",
            step, self.run.id, size / 2**20, self.checkpoint_bytes / 2**20,
        )
        artifact = wandb.Artifact(
            f"model-{self.run.id}", type="model",
            metadata={"step": int(step), "final": bool(final), "size_bytes": size},
        )
        artifact.add_dir(str(staged), policy="immutable")  # the staged files stay put until synced
        aliases = ["latest", f"step-{int(step)}"] + (["final"] if final else [])
        self.run.log_artifact(artifact, aliases=aliases)

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        if self.run is None:
            return
        self.run.summary.update(redact(dict(summary)))
        self._summary_logged = True
        self._log_run_files()

    def _log_run_files(self) -> None:
        """validated_config.json and run_metadata.json (redacted copies) as artifacts, once."""
        if self._files_logged:
            return
        self._files_logged = True
        for file_name, artifact_type in RUN_FILES:
            source = self.out_dir / file_name
            if not source.is_file():
                logger.warning("%s not found; not logged to W&B", source)
                continue
            staged = _unique_dir(self._staging, artifact_type) / file_name
            staged.parent.mkdir(parents=True)
            try:
                content = json.dumps(redact(json.loads(source.read_text())), indent=2)
            except json.JSONDecodeError as error:
                logger.warning("%s is not valid JSON (%s); not logged to W&B", source, error)
                continue
            staged.write_text(content + "\n")
            artifact = wandb.Artifact(f"{artifact_type}-{self.run.id}", type=artifact_type)
            artifact.add_file(str(staged), name=file_name, policy="immutable")
            self.run.log_artifact(artifact)

    def close(self) -> None:
        """Finish the run; one closed without a summary is marked failed (exit code 1)."""
        if self._closed:
            return
        self._closed = True
        if self.run is None:
            return
        self._log_run_files()
        self.run.finish(exit_code=0 if self._summary_logged else 1)
        if self.resolution.mode == "online":
            shutil.rmtree(self._staging, ignore_errors=True)  # uploaded by finish()


def wandb_sink_from_config(
    logging_config: LoggingConfig,
    *,
    out_dir: Path,
    run_config: Mapping[str, Any],
    run_name: str | None = None,
    group: str | None = None,
    extra_config: Mapping[str, Any] | None = None,
    rank: int = 0,
) -> WandbSink | None:
    """The W&B sink of one run, or None when W&B is off (``logging.use_wandb=false``) or off rank 0.

    ``run_config`` is the resolved run config as a dict (``config_to_dict``): seed and mode are keys of
    it and every grid axis is a dotted path into it; ``extra_config`` adds keys such as ``sweep_id``.
    A sweep passes ``run_name`` (the trial id) and ``group`` (the sweep id), which win over
    ``logging.wandb_run_name``/``logging.wandb_group``: every trial of a sweep is grouped by it.
    Without them: ``logging.wandb_run_name``, ``logging.run_name``, then ``<mode>-seed<seed>``.
    Project, entity, run folder and resume policy: the config's key when set, else ``WANDB_PROJECT``,
    ``WANDB_ENTITY``, ``WANDB_DIR``, ``WANDB_RESUME``, else biollm-cls, none, ``out_dir``, ``allow``
    (``tracking.mode.run_settings``). With ``allow`` the run id is kept in ``<out_dir>/wandb/``, so a
    trial that Ray retries (the engine resumes from its last checkpoint) continues the same W&B run.
    """
    if not logging_config.use_wandb or rank != 0:
        return None
    name = (run_name or logging_config.wandb_run_name or logging_config.run_name
            or f"{(run_config.get('method') or {}).get('name')}-seed{run_config.get('seed')}")
    settings = run_settings(  # a config key that is set wins; unset, the WANDB_* variable; then our default
        project=logging_config.wandb_project, entity=logging_config.wandb_entity, directory=logging_config.wandb_dir,
        resume=logging_config.wandb_resume, out_dir=Path(out_dir), environ=os.environ,
    )
    return WandbSink(
        project=settings.project,
        entity=settings.entity,
        mode=logging_config.wandb_mode,
        directory=settings.dir,
        run_name=name,
        group=group or logging_config.wandb_group,
        tags=logging_config.wandb_tags,
        resume=settings.resume,
        config={**run_config, **(extra_config or {})},
        out_dir=out_dir,
        log_checkpoints=logging_config.wandb_log_checkpoints,
    )
