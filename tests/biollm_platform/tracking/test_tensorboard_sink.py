"""TensorBoardSink: event files read back with TensorBoard's own reader (EventAccumulator)."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from biollm_platform.tracking.tensorboard_sink import TensorBoardSink


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    accumulator = EventAccumulator(str(log_dir))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def test_scalars_and_summary_read_back(tmp_path: Path) -> None:
    sink = TensorBoardSink(tmp_path)
    sink.log_metrics(1, {"task_loss": 0.5, "task_id": 0, "distill_kl": None, "matrix": [[1.0]]})
    sink.log_metrics(2, {"task_loss": 0.25, "seen_acc": 0.75})
    sink.log_summary({"final_seen_acc_avg": 0.75, "mode": "sleep"})
    sink.close()
    scalars = _scalars(tmp_path / "tensorboard")
    assert scalars["task_loss"] == [(1, 0.5), (2, 0.25)]
    assert scalars["seen_acc"] == [(2, 0.75)] and scalars["task_id"] == [(1, 0.0)]
    assert scalars["summary/final_seen_acc_avg"] == [(2, 0.75)]
    assert set(scalars) == {"task_loss", "task_id", "seen_acc", "summary/final_seen_acc_avg"}


def test_a_resumed_run_purges_the_points_past_its_checkpoint(tmp_path: Path) -> None:
    first = TensorBoardSink(tmp_path)
    for step in range(1, 6):
        first.log_metrics(step, {"task_loss": float(step)})
    first.close()  # "killed" after step 5; the checkpoint was at step 3
    second = TensorBoardSink(tmp_path)
    for step in range(4, 7):
        second.log_metrics(step, {"task_loss": step * 10.0})
    second.close()
    assert _scalars(tmp_path / "tensorboard")["task_loss"] == [
        (1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0), (5, 50.0), (6, 60.0)
    ]
