"""Bad input, on purpose: each case exits 2 with one stderr line naming the problem, no traceback, no trace.

Every case runs the real `biollm` app in this process (Typer's CliRunner) from a scratch working
directory whose tree is snapshotted before and after: nothing may be created or changed. Cases that
need a read-only or a full file system mount a real tmpfs (root, as on this project's machines and CI).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biollm_platform.cli.app import app

GARBAGE = bytes(range(128, 256)) * 4 + b"\x00\xff\xfe"  # not UTF-8 anywhere
TINY = ["train=cpu", "train.max_steps=6", "benchmark.switch_every=3", "benchmark.num_tasks=2", "benchmark.heldout_size=8",
        "train.eval_interval=3", "consolidation.sleep_min_interval=3", "consolidation.sleep_max_interval=3",
        "consolidation.min_sleep_steps=1", "consolidation.max_sleep_steps=1", "replay.capacity=32",
        "logging.checkpoint_interval=3", "logging.checkpoint_keep_last=3"]
SWEEP = "name: t\nbase:\n  overrides: [train=cpu, device=cpu]\ngrid:\n  seed: [7]\n  mode: [sleep, nosleep]\n"


@dataclass
class Workspace:
    root: Path
    tokenizer: Path
    run: Path  # a finished tiny run with checkpoints at steps 3 and 6 (copy it before changing it)

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    def copy_run(self, name: str = "run") -> Path:
        return Path(shutil.copytree(self.run, self.root / name))

    def sweep(self, text: str) -> list[str]:
        return ["sweep", "submit", str(self.write("s.yaml", text + f"storage: {self.root / 'sweeps'}\n"))]

    def instructions(self, text: str | bytes, *extra: str) -> list[str]:
        data = self.write("data.jsonl", text)
        return ["train", *TINY, "benchmark=instruction", f"benchmark.local_path={data}",
                f"benchmark.tokenizer_name={self.tokenizer}", "model.vocab_size=8", "benchmark.heldout_per_task=2",
                "benchmark.min_examples_per_task=4", "benchmark.seq_len=16", *extra]

    def mount(self, name: str, options: str) -> Path:
        point = self.root / name
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"mounting a tmpfs needs root or CAP_SYS_ADMIN (this project's machines and CI have it): {done.stderr}")
        return point


def _npz(ws: Workspace, **arrays: list) -> Path:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(value) for name, value in arrays.items()})
    return ws.write("d.npz", buffer.getvalue())


def _records(tasks: tuple[str, ...] = ("t1", "t2"), per_task: int = 12) -> str:
    rows = [{"task": t, "prompt": f"say {w}", "response": f"{w} one"} for t in tasks for w in ("abc" * per_task)[:per_task]]
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<eos>", "say", "a", "b", "c", "one", "two", "three"]
    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<eos>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    path = tmp_path_factory.mktemp("tokenizer") / "tok"
    PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>").save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    result = CliRunner().invoke(app, ["train", *TINY, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000003", "step-00000006"]
    return out


@pytest.fixture
def workspace(tmp_path: Path, tokenizer: Path, finished_run: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    root = tmp_path / "ws"
    root.mkdir()
    monkeypatch.chdir(root)
    yield Workspace(root, tokenizer, finished_run)
    for mounted in [p for p in root.iterdir() if p.is_dir() and os.path.ismount(p)]:
        subprocess.run(["umount", str(mounted)], check=True)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root: kind, and for files size, mtime and content hash."""
    tree: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            tree[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            tree[rel] = ("dir",)
        else:
            stat = path.stat()
            tree[rel] = ("file", stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return tree


def _garble_metrics(ws: Workspace) -> list[str]:
    run = ws.copy_run()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[1] = '{"step": 2, "task_lo'  # a garbled record in the middle (a torn last line is tolerated)
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return ["train", *TINY, "--out", str(run), "--resume"]


class _Exploit:
    def __reduce__(self):  # noqa: ANN204
        return (os.system, ("touch pwned",))


def _malicious_checkpoint(ws: Workspace) -> list[str]:
    run = ws.copy_run()
    (run / "checkpoints" / "step-00000006" / "state.pt").write_bytes(pickle.dumps({"neocortex": _Exploit()}))
    return ["train", *TINY, "--out", str(run), "--resume"]


def _no_readable_checkpoint(ws: Workspace) -> list[str]:
    run = ws.copy_run()
    for checkpoint in (run / "checkpoints").iterdir():
        (checkpoint / "state.pt").write_bytes(b"PK\x03\x04 torn")
    return ["train", *TINY, "--out", str(run), "--resume"]


def _finished_sweep(ws: Workspace) -> Path:
    sweep = ws.root / "sweeps" / "t-1"
    ws.write("sweeps/t-1/manifest.json", json.dumps({"sweep_id": "t-1", "name": "t", "trials": []}))
    return sweep


Setup = Callable[[Workspace], list[str]]
CASES: list[tuple[str, Setup, str]] = [
    # --- run config: keys, values, presets, overrides (config show and train share the loader)
    ("unknown-key", lambda ws: ["config", "show", "experts.num_expert=3"], "unknown key 'experts.num_expert' (did you mean 'num_experts'?)"),
    ("unknown-section", lambda ws: ["config", "show", "expert.num_experts=3"], "unknown key 'expert'"),
    ("unknown-preset", lambda ws: ["config", "show", "train=gpu"], "unknown train preset 'gpu'"),
    ("preset-path", lambda ws: ["config", "show", "train=../cpu"], "unknown train preset '../cpu'"),
    ("bad-int", lambda ws: ["config", "show", "seed=abc"], "seed: input should be a valid integer"),
    ("bad-mode", lambda ws: ["config", "show", "mode=sleepy"], "mode must be one of sleep (= method=cls), nosleep (= method=nosleep), got 'sleepy'"),
    ("bad-method", lambda ws: ["config", "show", "method=sleepy"], "unknown method preset 'sleepy'"),
    ("bad-method-key", lambda ws: ["config", "show", "method=er", "method.alpha=1"], "unknown key 'method.alpha' (valid keys in 'method': name, replay_batch_size)"),
    ("bad-device", lambda ws: ["config", "show", "device=tpu"], "device: string should match pattern"),
    ("cross-check", lambda ws: ["config", "show", "experts.top_k=99"], "top_k (99) must not exceed num_experts (8)"),
    ("seq-too-long", lambda ws: ["config", "show", "benchmark.seq_len=100"], "benchmark.seq_len (100) exceeds model.max_seq_len (64)"),
    ("interval-order", lambda ws: ["config", "show", "consolidation.sleep_min_interval=500"], "sleep_min_interval must not exceed sleep_max_interval"),
    ("zero-steps", lambda ws: ["config", "show", "train.max_steps=0"], "train.max_steps: input should be greater than or equal to 1"),
    ("negative-lambda", lambda ws: ["config", "show", "ewc.lambda=-1"], "ewc.lambda: input should be greater than or equal to 0"),
    ("section-as-value", lambda ws: ["config", "show", "experts=3"], "experts: expected a mapping of experts keys"),
    ("value-on-a-value", lambda ws: ["config", "show", "seed.x=1"], "seed"),
    ("no-equals", lambda ws: ["config", "show", "experts.num_experts"], "expected key=value with a dotted key"),
    ("bad-key-syntax", lambda ws: ["config", "show", "experts..top_k=1"], "expected key=value with a dotted key"),
    ("unparsable-list", lambda ws: ["config", "show", "logging.wandb_tags=[a,"], "cannot parse value '[a,'"),
    ("list-for-int", lambda ws: ["config", "show", "seed=[1,2]"], "seed: input should be a valid integer"),
    # --- run-config files
    ("file-missing", lambda ws: ["config", "show", "--file", "nope.yaml"], "config file not found: nope.yaml"),
    ("file-is-dir", lambda ws: ["config", "show", "--file", str(ws.write("d/x", "") .parent.relative_to(ws.root))], "config file is a directory: d"),
    ("file-binary", lambda ws: ["config", "show", "--file", str(ws.write("bin.yaml", GARBAGE))], "bin.yaml: not a YAML text file (byte 0 is not UTF-8)"),
    ("file-syntax", lambda ws: ["config", "show", "--file", str(ws.write("bad.yaml", "seed: [1,\n"))], "invalid YAML"),
    ("file-tab", lambda ws: ["config", "show", "--file", str(ws.write("tab.yaml", "experts:\n\tnum_experts: 3\n"))], "tab.yaml:2:1: invalid YAML"),
    ("file-list", lambda ws: ["config", "show", "--file", str(ws.write("list.yaml", "- seed: 1\n"))], "list.yaml:1: expected a mapping of config keys, got a list"),
    ("file-duplicate", lambda ws: ["config", "show", "--file", str(ws.write("dup.yaml", "seed: 1\nseed: 2\n"))], "dup.yaml:2: duplicate key 'seed'"),
    ("file-unknown-key", lambda ws: ["config", "show", "--file", str(ws.write("k.yaml", "seed: 1\nexperts:\n  topk: 2\n"))], "k.yaml:3: unknown key 'experts.topk'"),
    ("file-group-preset", lambda ws: ["config", "show", "--file", str(ws.write("g.yaml", "groups: {train: nope}\n"))], "unknown train preset 'nope'"),
    ("file-unknown-group", lambda ws: ["config", "show", "--file", str(ws.write("g.yaml", "groups: {trainer: cpu}\n"))], "g.yaml:1: unknown config group 'trainer'"),
    ("file-groups-not-mapping", lambda ws: ["config", "show", "--file", str(ws.write("g.yaml", "groups: cpu\n"))], "'groups' must map config groups to preset names"),
    ("file-preset-as-value", lambda ws: ["config", "show", "--file", str(ws.write("p.yaml", "train: cpu\n"))], "to select the preset write `train=cpu`"),
    # --- biollm train: output places, resume, instruction data
    ("out-is-a-file", lambda ws: ["train", *TINY, "--out", str(ws.write("some_file", "x"))], "exists and is a file; choose another --out"),
    ("out-under-a-file", lambda ws: ["train", *TINY, "--out", str(ws.write("some_file", "x") / "sub")], "some_file is a file, not a directory"),
    ("out-read-only", lambda ws: ["train", *TINY, "--out", str(ws.mount("ro", "ro,size=1m") / "run")], "is on a read-only file system; choose another --out"),
    ("out-in-sysfs", lambda ws: ["train", *TINY, "--out", "/sys/biollm-run"], "Operation not permitted: /sys/biollm-run"),
    ("out-holds-a-run", lambda ws: ["train", *TINY, "--out", str(ws.copy_run())], "already holds a run; pass --resume to continue it, or --out DIR"),
    ("resume-garbled-metrics", _garble_metrics, "metrics.jsonl:2: not a metrics record (garbled line)"),
    ("resume-malicious-checkpoint", _malicious_checkpoint, "is not a BioLLM checkpoint (it holds objects other than tensors and plain data) and will not be loaded"),
    ("resume-no-readable-checkpoint", _no_readable_checkpoint, "no readable checkpoint under"),
    ("instruction-binary-data", lambda ws: ws.instructions(GARBAGE), "data.jsonl:1: not a UTF-8 text file"),
    ("instruction-bad-json", lambda ws: ws.instructions(_records() + '{"task": "t1", "prompt": \n'), "data.jsonl:25: malformed JSON"),
    ("instruction-bad-json-with-loggers", lambda ws: ws.instructions(_records() + '{"task": "t1", "prompt": \n', "logging.use_wandb=true",
                                                                     "logging.use_tensorboard=true", "logging.use_csv=true"),
     "data.jsonl:25: malformed JSON"),
    ("instruction-too-few", lambda ws: ws.instructions(_records(per_task=3)), "has 3 usable examples of 3; benchmark.min_examples_per_task is 4"),
    ("instruction-missing-field", lambda ws: ws.instructions(_records(), "benchmark.prompt_field=question"), "field 'question'"),
    ("instruction-no-file", lambda ws: ["train", *TINY, "benchmark=instruction", "benchmark.local_path=missing.jsonl",
                                        f"benchmark.tokenizer_name={ws.tokenizer}", "model.vocab_size=8"], "missing.jsonl does not exist"),
    ("instruction-no-tokenizer", lambda ws: ["train", *TINY, "benchmark=instruction", "benchmark.local_path=x.jsonl"], "needs benchmark.tokenizer_name"),
    # --- the classification benchmarks' data (benchmark.source=npz) and their model
    ("npz-not-an-archive", lambda ws: ["train", "model=mlp", "benchmark=split_classification", "benchmark.source=npz",
                                       f"benchmark.path={ws.write('d.npz', GARBAGE)}"], "d.npz: not an .npz archive"),
    ("npz-no-labels", lambda ws: ["train", "model=mlp", "benchmark=split_classification", "benchmark.source=npz",
                                  f"benchmark.path={_npz(ws, x=[[0.0, 1.0]])}"], "d.npz: no array y"),
    ("npz-missing", lambda ws: ["train", "model=mlp", "benchmark=split_classification", "benchmark.source=npz",
                                "benchmark.path=nope.npz"], "benchmark.path=nope.npz: no such file"),
    ("mlp-on-tokens", lambda ws: ["train", "model=mlp"], "it needs a classification benchmark"),
    # --- sweep files and sweep submit
    ("sweep-missing", lambda ws: ["sweep", "submit", "nope.yaml"], "nope.yaml: sweep file not found"),
    ("sweep-binary", lambda ws: ["sweep", "submit", str(ws.write("s.yaml", GARBAGE))], "s.yaml: not a YAML text file (byte 0 is not UTF-8)"),
    ("sweep-syntax", lambda ws: ws.sweep("name: t\ngrid:\n\tseed: [7]\n"), "s.yaml:3:1: invalid YAML"),
    ("sweep-not-mapping", lambda ws: ["sweep", "submit", str(ws.write("s.yaml", "- name: t\n"))], "a sweep file is a YAML mapping"),
    ("sweep-unknown-key", lambda ws: ws.sweep(SWEEP + "resources:\n  gpu_per_worker: 1\n"), "s.yaml:8: resources.gpu_per_worker: unknown key"),
    ("sweep-no-name", lambda ws: ws.sweep("grid:\n  seed: [7]\n"), "name: required key is missing"),
    ("sweep-bad-name", lambda ws: ws.sweep("name: my sweep\ngrid:\n  seed: [7]\n"), "name: String should match pattern"),
    ("sweep-empty-grid", lambda ws: ws.sweep("name: t\ngrid: {}\n"), "the grid is empty"),
    ("sweep-empty-axis", lambda ws: ws.sweep("name: t\ngrid:\n  seed: []\n"), "axis `seed` has no values"),
    ("sweep-repeated-value", lambda ws: ws.sweep("name: t\ngrid:\n  seed: [7, 7]\n"), "axis `seed` repeats a value"),
    ("sweep-unknown-axis", lambda ws: ws.sweep(SWEEP + "  experts.num_expertz: [4]\n"), "s.yaml:7: grid.experts.num_expertz: `experts.num_expertz` is not a config key"),
    ("sweep-bad-axis-value", lambda ws: ws.sweep(SWEEP + "  replay.capacity: [64]\n  experts.fast_lr: [abc]\n"), "s.yaml:8: trial"),
    ("sweep-zero-cpus", lambda ws: ws.sweep(SWEEP + "resources: {cpus_per_worker: 0}\n"), "resources.cpus_per_worker: Input should be greater than 0"),
    ("sweep-gpu-fraction", lambda ws: ws.sweep(SWEEP + "resources: {gpus_per_worker: 1.5}\n"), "a fractional GPU request must be at most 1"),
    ("sweep-local-two-workers", lambda ws: ws.sweep(SWEEP + "resources: {executor: train_local, workers_per_trial: 2}\n"), "executor train_local runs one worker per trial"),
    ("sweep-negative-retries", lambda ws: ws.sweep(SWEEP + "retries: -1\n"), "retries: Input should be greater than or equal to 0"),
    ("sweep-bad-wandb-mode", lambda ws: ws.sweep(SWEEP + "wandb: {mode: sometimes}\n"), "wandb.mode"),
    ("sweep-missing-base-file", lambda ws: ws.sweep(SWEEP.replace("  overrides:", "  files: [nope.yaml]\n  overrides:")), "base.files:"),
    ("sweep-override-an-axis", lambda ws: [*ws.sweep(SWEEP), "seed=3"], "sets `seed`, which is a grid axis"),
    ("sweep-bad-override", lambda ws: [*ws.sweep(SWEEP), "experts.num_expert=3"], "unknown key 'experts.num_expert'"),
    ("sweep-bad-executor", lambda ws: [*ws.sweep(SWEEP), "--executor", "local"], "Invalid value for '--executor': 'local' is not one of"),
    ("sweep-bad-only", lambda ws: [*ws.sweep(SWEEP), "--only", "dream"], "'dream' is not one of 'cls', 'nosleep'"),
    ("sweep-only-not-in-grid", lambda ws: [*ws.sweep(SWEEP), "--only", "er"], "--only er: the grid's methods are cls, nosleep"),
    ("sweep-zero-max-steps", lambda ws: [*ws.sweep(SWEEP), "--max-steps", "0"], "Invalid value for '--max-steps'"),
    ("sweep-no-file-argument", lambda ws: ["sweep", "submit"], "Missing argument 'sweep_file'"),
    ("sweep-status-unknown", lambda ws: ["sweep", "status", "nope"], "no sweep 'nope' under outputs/sweeps"),
    ("sweep-stop-unknown", lambda ws: ["sweep", "stop", "nope"], "no sweep 'nope' under outputs/sweeps"),
    ("sweep-stop-not-running", lambda ws: ["sweep", "stop", str(_finished_sweep(ws))], "has no running driver"),
    # --- results, data, bench, the app itself
    ("aggregate-unknown", lambda ws: ["results", "aggregate", "nope"], "sweep 'nope': no such directory"),
    ("aggregate-bad-level", lambda ws: ["results", "aggregate", "nope", "--level", "2"], "Invalid value for '--level'"),
    ("make-instructions-zero", lambda ws: ["data", "make-instructions", "--out", "d", "--per-task", "0"], "Invalid value for '--per-task'"),
    ("make-tiny-lm-binary", lambda ws: ["data", "make-tiny-lm", "--data", str(ws.write("d.jsonl", GARBAGE)), "--out", "lm"], "d.jsonl:1: not a UTF-8 text file"),
    ("make-tiny-lm-missing", lambda ws: ["data", "make-tiny-lm", "--data", "nope.jsonl", "--out", "lm"], "nope.jsonl"),
    ("schema-out-under-a-file", lambda ws: ["config", "schema", "--out", str(ws.write("some_file", "x") / "s.json")], "cannot write it"),
    ("bench-zero-repeats", lambda ws: ["bench", "startup", "--repeats", "0"], "Invalid value for '--repeats'"),
    ("unknown-command", lambda ws: ["trian"], "No such command 'trian'"),
    ("unknown-option", lambda ws: ["--verbose"], "No such option: --verbose"),
    ("unknown-sub-option", lambda ws: ["sweep", "list", "--all"], "No such option: --all"),
]


@pytest.mark.parametrize(("setup", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_no_trace(workspace: Workspace, setup: Setup, expected: str) -> None:
    args = setup(workspace)
    before = snapshot(workspace.root)
    result = CliRunner().invoke(app, args)
    after = snapshot(workspace.root)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not an exception Click caught for us
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert result.stdout == ""
    assert after == before, {key: (before.get(key), after.get(key)) for key in before.keys() | after.keys()
                             if before.get(key) != after.get(key)}
    assert not (workspace.root / "pwned").exists()


def test_there_are_at_least_fifty_cases() -> None:
    assert len(CASES) >= 50 and len({case[0] for case in CASES}) == len(CASES)


def test_a_full_disk_says_so_keeps_the_last_checkpoint_and_resumes_once_there_is_room(
    workspace: Workspace, finished_run: Path
) -> None:
    """A real tmpfs with room for one checkpoint: the second fails with ENOSPC; grown, --resume finishes."""
    from biollm_core.checkpoint import list_checkpoints, load_checkpoint

    checkpoint = (finished_run / "checkpoints" / "step-00000003" / "state.pt").stat().st_size
    disk = workspace.mount("small", f"size={int(checkpoint * 1.5) // 4096 * 4096 + 65536}")
    out = disk / "run"
    full = CliRunner().invoke(app, ["train", *TINY, "--out", str(out), "--quiet"])
    assert full.exit_code == 2 and isinstance(full.exception, SystemExit) and "Traceback" not in full.output
    error = full.stderr.splitlines()[-1]
    assert error == (
        f"error: No space left on device while writing {out / 'checkpoints' / 'step-00000006' / 'state.pt'}: "
        f"the last complete checkpoint, {out / 'checkpoints' / 'step-00000003'}, is intact; "
        "free some space and rerun with --resume"
    )
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["step-00000003"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000003"]  # no temporary left
    assert load_checkpoint(out / "checkpoints" / "step-00000003", __import__("torch").device("cpu"))["run_state"]["step"] == 3

    subprocess.run(["mount", "-o", f"remount,size={checkpoint * 8}", str(disk)], check=True)
    resumed = CliRunner().invoke(app, ["train", *TINY, "--out", str(out), "--resume", "--quiet", "--json"])
    assert resumed.exit_code == 0, resumed.output
    figures = ("final_seen_acc_avg", "accuracy_matrix", "base_accuracy_matrix", "sleep_count", "steps")
    expected = json.loads((finished_run / "summary.json").read_text())
    assert {k: json.loads(resumed.stdout)["summary"][k] for k in figures} == {k: expected[k] for k in figures}
