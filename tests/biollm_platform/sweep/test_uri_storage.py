"""Trial directories behind a storage URI (file:// here; s3:// and gs:// take the same pyarrow path)."""

from __future__ import annotations

from pathlib import Path

from biollm_platform.sweep.uri_storage import MirrorSink, mirror, stage


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
