"""Trial directories in object storage (``storage: s3://...``, ``gs://``, ``file://``): stage and mirror.

A worker runs the engine in a local staging copy of its trial directory and mirrors it to the URI
at every checkpoint, so a retry on a fresh node (or a resumed sweep) stages the latest checkpoint
back and continues from it; each checkpoint is stored once, under ``<trial>/checkpoints/``. A
checkpoint is uploaded under a hidden name and renamed, so a reader never takes a half-uploaded one
for a checkpoint; those the engine pruned locally are deleted remotely.

Data-parallel trials: rank 0 mirrors the trial as above; rank r > 0 mirrors only its own part of the
checkpoints (``checkpoints/rank-r/step-N``, its replay shard) and stages the whole trial afresh at
every start, so it resumes from the checkpoint rank 0 picks on any node.
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINTS = "checkpoints"


def _filesystem(uri: str):  # type: ignore[no-untyped-def]
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(uri)


def _remote_dirs(fs, path: str) -> set[str]:  # type: ignore[no-untyped-def]
    import pyarrow.fs

    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    return {info.base_name for info in infos if info.type == pyarrow.fs.FileType.Directory}


def stage(uri: str, out_dir: Path) -> None:
    """Copy the trial's files from ``uri`` into ``out_dir`` (nothing when the URI holds none yet)."""
    import pyarrow.fs

    fs, root = _filesystem(uri)
    if fs.get_file_info(root).type != pyarrow.fs.FileType.Directory:
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    pyarrow.fs.copy_files(root, str(out_dir), source_filesystem=fs, destination_filesystem=pyarrow.fs.LocalFileSystem())


def mirror(out_dir: Path, uri: str) -> None:
    """Make ``uri`` hold what ``out_dir`` holds: every file, and exactly its complete checkpoints."""
    import pyarrow.fs

    fs, root = _filesystem(uri)
    local = pyarrow.fs.LocalFileSystem()
    fs.create_dir(root, recursive=True)
    for path in sorted(out_dir.rglob("*")):
        relative = path.relative_to(out_dir)
        if relative.parts[0] == CHECKPOINTS or not path.is_file():
            continue
        fs.create_dir(f"{root}/{relative.parent.as_posix()}", recursive=True)
        pyarrow.fs.copy_files(str(path), f"{root}/{relative.as_posix()}", source_filesystem=local, destination_filesystem=fs)
    _mirror_checkpoints(fs, out_dir / CHECKPOINTS, f"{root}/{CHECKPOINTS}")


def mirror_rank(out_dir: Path, uri: str, rank: int) -> None:
    """Make ``uri`` hold exactly rank ``rank``'s complete checkpoint parts (``checkpoints/rank-<rank>``)."""
    fs, root = _filesystem(uri)
    part = f"{CHECKPOINTS}/rank-{rank}"
    fs.create_dir(f"{root}/{part}", recursive=True)
    _mirror_checkpoints(fs, out_dir / part, f"{root}/{part}")


def _mirror_checkpoints(fs, checkpoints: Path, remote_root: str) -> None:  # type: ignore[no-untyped-def]
    """Upload the ``step-*`` directories under ``checkpoints`` that ``remote_root`` lacks; delete the pruned."""
    import pyarrow.fs

    local = pyarrow.fs.LocalFileSystem()
    wanted = {p.name for p in checkpoints.iterdir() if p.is_dir() and p.name.startswith("step-")} if checkpoints.is_dir() else set()
    present = {name for name in _remote_dirs(fs, remote_root) if name.startswith("step-")}  # never a rank's parts
    for name in sorted(wanted - present):
        hidden = f"{remote_root}/.upload-{name}"
        fs.create_dir(hidden, recursive=True)
        pyarrow.fs.copy_files(str(checkpoints / name), hidden, source_filesystem=local, destination_filesystem=fs)
        fs.move(hidden, f"{remote_root}/{name}")
    for name in sorted(present - wanted):
        fs.delete_dir(f"{remote_root}/{name}")


class MirrorSink:
    """MetricsSink of a rank with a storage URI: at every checkpoint, rank 0 mirrors the trial directory,
    rank r > 0 its own checkpoint parts."""

    def __init__(self, out_dir: Path, uri: str, rank: int = 0) -> None:
        self._out_dir = out_dir
        self._uri = uri
        self._rank = rank

    def log_metrics(self, step: int, metrics: object) -> None:
        pass

    def log_checkpoint(self, step: int, path: Path, final: bool) -> None:
        if self._rank == 0:
            mirror(self._out_dir, self._uri)
        else:
            mirror_rank(self._out_dir, self._uri, self._rank)

    def log_summary(self, summary: object) -> None:
        pass

    def close(self) -> None:
        pass
