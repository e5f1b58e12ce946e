"""cluster.yaml passes Ray's own cluster-launcher validation and keeps the settings sweeps rely on."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config


def test_cluster_yaml_validates(repo_root: Path) -> None:
    raw = yaml.safe_load((repo_root / "cluster.yaml").read_text())
    config = prepare_config(raw)  # fills Ray's provider defaults, as `ray up` does
    validate_config(config)  # Ray's JSON-schema validation (raises on unknown or missing fields)
    head = config["available_node_types"][config["head_node_type"]]
    assert set(head["resources"]) == {"CPU"}  # no custom resource: sweeps run on any Ray cluster
    gpu_types = [t for t in config["available_node_types"].values() if t["resources"].get("GPU")]
    assert gpu_types and all(t["min_workers"] == 0 and t["max_workers"] >= 1 for t in gpu_types)
    assert config["docker"]["image"] and "--gpus all" in config["docker"]["worker_run_options"]
    start = " ".join(config["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in start and "--resources" not in start
    assert "~/.ray/auth_token" in config["file_mounts"]


def test_validator_refuses_unknown_keys(repo_root: Path) -> None:
    raw = yaml.safe_load((repo_root / "cluster.yaml").read_text())
    raw["available_node_types"]["worker.gpu"]["min_worker"] = 0  # typo of min_workers
    with pytest.raises(jsonschema.ValidationError, match="min_worker"):
        validate_config(prepare_config(raw))
