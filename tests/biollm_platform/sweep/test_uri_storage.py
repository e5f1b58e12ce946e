"""Trial directories behind a storage URI (file:// here; s3:// and gs:// take the same pyarrow path)."""

from __future__ import annotations

from pathlib import Path

from biollm_platform.sweep.uri_storage import MirrorSink, mirror, mirror_rank, stage


def _checkpoint(out_dir: Path, step: int) -> None:
    directory = out_dir / "checkpoints" / f"step-{step:08d}"
    directory.mkdir(parents=True)
    (directory / "state.pt").write_bytes(b"s" * step)
    (directory / "meta.json").write_text(f'{{"step": {step}}}')


def test_mirror_holds_each_kept_checkpoint_once_and_a_fresh_node_stages_it_back(tmp_path: Path) -> None:
    local, remote = tmp_path / "local", tmp_path / "bucket" / "sweep" / "trial"
    uri = f"file://{remote}"
    local.mkdir()
    (local / "metrics.jsonl").write_text('{"step": 5}\n')
    (local / "wandb").mkdir()
    (local / "wandb" / "run.txt").write_text("w")
    _checkpoint(local, 5)
    sink = MirrorSink(local, uri)
    sink.log_checkpoint(5, local / "checkpoints" / "step-00000005", final=False)
    _checkpoint(local, 10)
    __import__("shutil").rmtree(local / "checkpoints" / "step-00000005")  # the engine pruned it
    (local / "metrics.jsonl").write_text('{"step": 5}\n{"step": 10}\n')
    mirror(local, uri)
    assert sorted(p.name for p in (remote / "checkpoints").iterdir()) == ["step-00000010"]  # pruned there too
    assert (remote / "checkpoints" / "step-00000010" / "state.pt").read_bytes() == b"s" * 10
    assert (remote / "metrics.jsonl").read_text().count("step") == 2 and (remote / "wandb" / "run.txt").is_file()
    fresh = tmp_path / "fresh-node"
    stage(uri, fresh)
    assert (fresh / "checkpoints" / "step-00000010" / "state.pt").read_bytes() == b"s" * 10
    assert (fresh / "metrics.jsonl").read_text() == (local / "metrics.jsonl").read_text()


def test_stage_of_an_empty_uri_is_nothing(tmp_path: Path) -> None:
    stage(f"file://{tmp_path / 'nothing-yet'}", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_rank_mirrors_only_its_own_checkpoint_parts_and_rank_0_keeps_them(tmp_path: Path) -> None:
    """Data parallel: rank 1 uploads checkpoints/rank-1 (pruned like rank 0's); rank 0's mirror leaves it."""
    rank0, rank1, remote = tmp_path / "rank0", tmp_path / "rank1", tmp_path / "bucket" / "trial"
    uri = f"file://{remote}"
    _checkpoint(rank0, 5)
    for step in (4, 5):
        part = rank1 / "checkpoints" / "rank-1" / f"step-{step:08d}"
        part.mkdir(parents=True)
        (part / "state.pt").write_bytes(b"r" * step)
    (rank1 / "metrics.jsonl").write_text("a stale staged copy: never uploaded by rank 1\n")
    MirrorSink(rank1, uri, rank=1).log_checkpoint(5, rank1 / "checkpoints" / "step-00000005", final=False)
    __import__("shutil").rmtree(rank1 / "checkpoints" / "rank-1" / "step-00000004")
    mirror_rank(rank1, uri, 1)
    mirror(rank0, uri)
    assert sorted(p.name for p in (remote / "checkpoints").iterdir()) == ["rank-1", "step-00000005"]
    assert [p.name for p in (remote / "checkpoints" / "rank-1").iterdir()] == ["step-00000005"]
    assert (remote / "checkpoints" / "rank-1" / "step-00000005" / "state.pt").read_bytes() == b"r" * 5
    assert not (remote / "metrics.jsonl").exists()
