"""BIOLLM_TRIAL_SINKS: specs checked at submit, factories loaded in the worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from biollm_core.errors import UserError
from biollm_platform.sweep.extra_sinks import SINKS_ENV, build_sinks, specs_from_env

from .fault_sink import FaultSink, fault_spec


def test_specs_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SINKS_ENV, "pkg.mod:factory, /x/y.py:make?a=1")
    assert specs_from_env() == ["pkg.mod:factory", "/x/y.py:make?a=1"]
    monkeypatch.setenv(SINKS_ENV, "no-factory")
    with pytest.raises(UserError, match="expected module:factory"):
        specs_from_env()


def test_file_and_module_factories_get_trial_rank_and_options(tmp_path: Path) -> None:
    spec = fault_spec("sleep-seed7", "exit", 7)
    (sink,) = build_sinks([spec], trial_id="sleep-seed7", out_dir=tmp_path, rank=0)
    assert type(sink).__name__ == FaultSink.__name__
    assert build_sinks([spec], trial_id="sleep-seed7", out_dir=tmp_path, rank=1) == []  # rank 0 only
    assert build_sinks([spec], trial_id="nosleep-seed7", out_dir=tmp_path, rank=0) == []
    # module form: any importable callable; it gets the trial, the directory, the rank and the options
    made = build_sinks(["builtins:dict?x=1"], trial_id="t", out_dir=tmp_path, rank=0)
    assert made == [{"trial_id": "t", "out_dir": tmp_path, "rank": 0, "x": "1"}]


def test_raise_fault_fails_every_attempt(tmp_path: Path) -> None:
    (sink,) = build_sinks([fault_spec("t", "raise", 3)], trial_id="t", out_dir=tmp_path, rank=0)
    sink.log_metrics(2, {})
    for _ in range(2):
        with pytest.raises(RuntimeError, match="injected fault at step 3"):
            sink.log_metrics(3, {})
