"""What a trial's driver reserves: accepted by Tune, no CPU, no custom resource."""

from __future__ import annotations

import pytest
from ray.tune.execution.placement_groups import resource_dict_to_pg_factory

from biollm_platform.sweep.schema import SweepSpec
from biollm_platform.sweep.trial import DRIVER_MEMORY_BYTES, driver_resources


def _spec(**resources: object) -> SweepSpec:
    return SweepSpec.model_validate({"name": "t", "grid": {"seed": [7]}, "resources": resources})


def test_train_workers_driver_holds_no_cpu_and_no_custom_resource() -> None:
    request = resource_dict_to_pg_factory(driver_resources(_spec()))  # what Tune builds from it
    assert request.bundles == [{"memory": float(DRIVER_MEMORY_BYTES)}]
    assert request.head_cpus == 0


def test_an_all_zero_request_is_what_tune_refuses() -> None:
    """Why the driver asks for a sliver of `memory`: {"CPU": 0} alone is not a valid Tune request."""
    with pytest.raises(ValueError, match="empty head"):
        resource_dict_to_pg_factory({"cpu": 0})


def test_train_local_driver_holds_the_workers_share() -> None:
    spec = _spec(executor="train_local", cpus_per_worker=2, gpus_per_worker=0.5)
    assert driver_resources(spec) == {"cpu": 2, "gpu": 0.5}
