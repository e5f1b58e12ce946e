from __future__ import annotations

import pytest

from biollm_core.config.overrides import canonical_path, flatten, parse_override, set_path
from biollm_core.errors import UserError


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("experts.num_experts=64", ("experts", "num_experts"), 64),
        ("seed=42", ("seed",), 42),
        ("mode=nosleep", ("method",), "nosleep"),  # the seed's spelling of the method group
        ("mode=sleep", ("method",), "cls"),
        ("train.amp_enabled=true", ("train", "amp_enabled"), True),
        ("experts.fast_lr=1e-3", ("experts", "fast_lr"), 1e-3),
        ("model.hf_revision=null", ("model", "hf_revision"), None),
        ("logging.wandb_tags=[a,b]", ("logging", "wandb_tags"), ["a", "b"]),
        ("consolidation.refresh.policy=off", ("consolidation", "refresh", "policy"), "off"),
        ("device=cuda:0", ("device",), "cuda:0"),
        ("logging.run_name=", ("logging", "run_name"), ""),
        ("logging.run_name=@night", ("logging", "run_name"), "@night"),
        ("ewc.lambda=10", ("ewc", "lambda"), 10),
        ("ewc.lambda_=10", ("ewc", "lambda"), 10),
        ("train={batch_size: 8}", ("train",), {"batch_size": 8}),
    ],
)
def test_parse_override(text: str, path: tuple[str, ...], value: object) -> None:
    override = parse_override(text)
    assert (override.path, override.value) == (path, value)
    assert type(override.value) is type(value)


def test_group_selection_needs_a_group_name_and_text() -> None:
    assert parse_override("train=rtx4070").group == "train"
    assert parse_override("model=hf_causal_lm").group == "model"
    assert parse_override("mode=nosleep").group == "method"
    assert parse_override("seed=3").group is None
    assert parse_override("train={batch_size: 8}").group is None
    assert parse_override("train.batch_size=8").group is None


@pytest.mark.parametrize("text", ["experts.num_experts", "=3", "experts..top_k=2", "1abc=2", "a b=1"])
def test_malformed_override_names_the_argument(text: str) -> None:
    with pytest.raises(UserError, match="expected key=value"):
        parse_override(text)


def test_unbalanced_list_is_an_error() -> None:
    with pytest.raises(UserError, match=r"override 'logging.wandb_tags=\[a,b'"):
        parse_override("logging.wandb_tags=[a,b")


def test_flatten_splits_dotted_keys_and_resolves_aliases() -> None:
    data = {"experts.num_experts": 4, "ewc": {"lambda_": 2.0}, "train": {}, "logging": {"wandb_tags": ["x"]}}
    assert flatten(data) == [
        (("experts", "num_experts"), 4),
        (("ewc", "lambda"), 2.0),
        (("logging", "wandb_tags"), ["x"]),
    ]


def test_set_path_creates_and_replaces_parents() -> None:
    data: dict[str, object] = {"consolidation": {"refresh": False}}
    set_path(data, ("consolidation", "refresh", "policy"), "all")
    set_path(data, ("experts", "top_k"), 1)
    assert data == {"consolidation": {"refresh": {"policy": "all"}}, "experts": {"top_k": 1}}


def test_canonical_path_leaves_other_keys() -> None:
    assert canonical_path(("ewc", "fisher_decay")) == ("ewc", "fisher_decay")
    assert canonical_path(("lambda_",)) == ("lambda_",)
