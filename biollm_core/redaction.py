"""Keep credentials out of what BioLLM writes (shared by the engine and the platform): config and metadata files, W&B config, logs.

Two rules, applied to any JSON-like value (dicts, lists, strings):

- a key that names a credential (``api_key``, ``wandb_api_key``, ``secret``, ``hf_token``,
  ``password``, ...) has its value replaced by ``REDACTED``;
- any string that contains the value of a secret environment variable (``WANDB_API_KEY`` and every
  variable whose name names a credential, e.g. ``HF_TOKEN``) has that value replaced, wherever it is.

Token *counts* and tokenizer names are not credentials: ``tokens_per_s``, ``tokenizer_name``,
``eos_token`` and ``max_new_tokens`` are kept (the key rule matches ``token`` as a whole word only,
and not the special tokens of a tokenizer).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 8  # shorter env values ("1", "true") would redact innocent text everywhere
_SPECIAL_TOKEN_WORDS = {"eos", "bos", "pad", "unk", "sep", "cls", "mask", "start", "end", "additional",
                        "special"}  # eos_token & co. name a tokenizer's special tokens, not credentials


def _words(name: str) -> list[str]:
    """``"WANDB_API_KEY"`` -> ``["wandb", "api", "key"]``; ``"apiKey"`` -> ``["api", "key"]``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [word for word in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if word]


def is_secret_key(name: str) -> bool:
    """Whether a key or environment variable name names a credential."""
    words = _words(name)
    if not words:
        return False
    if any(word in {"secret", "password", "passwd", "credential", "credentials", "apikey"} for word in words):
        return True
    for index, word in enumerate(words):
        previous = words[index - 1] if index else ""
        if word == "key" and previous in {"api", "access", "private", "auth"}:
            return True
        if word == "token" and previous not in _SPECIAL_TOKEN_WORDS:
            return True
    return False


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking environment variables, longest first (so overlapping ones redact fully)."""
    environ = os.environ if environ is None else environ
    values = {value for name, value in environ.items()
              if is_secret_key(name) and len(value) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, secrets: list[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``REDACTED``."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """A copy of a JSON-like ``value`` with credentials removed (see the module docstring).

    Non-string leaves (numbers, bools, None) are returned as they are; tuples become lists.
    """
    secrets = secret_values(environ)

    def walk(item: Any) -> Any:
        if isinstance(item, Mapping):
            return {key: REDACTED if element and is_secret_key(str(key)) else walk(element)
                    for key, element in item.items()}
        if isinstance(item, list | tuple):
            return [walk(element) for element in item]
        if isinstance(item, str):
            return redact_text(item, secrets)
        return item

    return walk(value)
