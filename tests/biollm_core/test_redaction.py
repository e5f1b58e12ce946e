"""Credentials are redacted by key name and by value; token counts and tokenizer names are kept."""

from __future__ import annotations

import pytest

from biollm_core.redaction import REDACTED, is_secret_key, redact, secret_values

KEY = "0123456789abcdef" * 2 + "fedcba98"


@pytest.mark.parametrize("name", ["api_key", "WANDB_API_KEY", "apiKey", "wandb_apikey", "hf_token",
                                  "HF_TOKEN", "token", "auth_token", "client_secret", "secret", "db_password",
                                  "aws_access_key_id", "credentials", "GITHUB_TOKEN"])
def test_secret_key_names(name: str):
    assert is_secret_key(name)


@pytest.mark.parametrize("name", ["tokens_per_s", "tokenizer_name", "eos_token", "pad_token_id",
                                  "max_new_tokens", "key", "keys", "seed", "task_cue", "routing",
                                  "WANDB_MODE", "sort_key", ""])
def test_not_secret_key_names(name: str):
    assert not is_secret_key(name)


def test_redact_by_key_and_by_env_value_at_any_depth():
    environ = {"WANDB_API_KEY": KEY, "HF_TOKEN": "hf_abcdefgh12", "SHORT_TOKEN": "abc", "HOME": "/root"}
    value = {
        "seed": 7,
        "logging": {"wandb_api_key": KEY, "api_key": None, "note": f"run with key {KEY}!"},
        "env": [{"HF_TOKEN": "x"}, f"--token hf_abcdefgh12 ({KEY})", ("a", 1.5)],
        "tokens_per_s": 123.0,
        "home": "/root",
        "abc": "abc",
    }
    assert redact(value, environ) == {
        "seed": 7,
        "logging": {"wandb_api_key": REDACTED, "api_key": None, "note": f"run with key {REDACTED}!"},
        "env": [{"HF_TOKEN": REDACTED}, f"--token {REDACTED} ({REDACTED})", ["a", 1.5]],
        "tokens_per_s": 123.0,
        "home": "/root",  # HOME is not a secret
        "abc": "abc",  # too short to be treated as a secret value
    }


def test_secret_values_longest_first():
    environ = {"A_TOKEN": "abcdefgh", "B_TOKEN": "abcdefghijkl", "C_SECRET": "abcdefgh"}
    assert secret_values(environ) == ["abcdefghijkl", "abcdefgh"]
    assert redact("xabcdefghijklx", environ) == f"x{REDACTED}x"


def test_redact_leaves_input_untouched():
    original = {"api_key": KEY}
    redact(original, {})
    assert original == {"api_key": KEY}
