"""A Hugging Face causal LM as the neocortex (spec §1), split at an injection point.

Two injection points:

- ``injection_fraction=None`` (default, the seed's behaviour): ``encode`` runs the model body (embeddings,
  every decoder layer, the final norm) and returns its last hidden state; ``decode`` is the LM head.
- ``injection_fraction=f``: ``k = floor(f * L + 0.5)`` decoder layers lie below the injection point
  (clamped to 1..L; the same convention as the tiny model's ``injection_layer``). ``encode`` returns the
  hidden state *leaving layer k-1 / entering layer k* (0-based; ``output_hidden_states[k]`` for k < L,
  before the final norm when k = L). It runs the body with a forward hook on layer k-1 that captures
  its output and a pre-hook on layer k that raises to skip the layers above: cost k/L of a forward.
  ``decode`` runs the body with layers 0..k-1 swapped for a stand-in that returns the given hidden
  state, so only layers k..L-1, the final norm and the head are computed: cost (L-k)/L of a forward, no
  layer runs twice. The swap is undone in a ``finally``; it makes decode non-reentrant (never call it
  from two threads at once on one model).

Logits are cut to the first ``vocab_size`` rows of the LM head (the slice is taken of the weight, so the
full-vocabulary logits are never materialised). ``encode`` returns float32 and ``decode`` accepts any
float dtype, casting to the model's: the hippocampus stays float32 whatever ``hf_torch_dtype`` is.

Consolidation memory. Sleep keeps, per consolidated parameter, a Fisher and an anchor copy (and AdamW
two moments), each the size of the parameters: for every trainable parameter (``consolidate_top_blocks
=None``, the default) that is 2 extra copies of the model for EWC plus 2 for AdamW. With
``consolidate_top_blocks=N`` only the top N decoder layers, the final norm and the LM head are trained
and anchored; the rest is frozen (``requires_grad=False``). A tied LM head is the input embedding, so it
is consolidated with the head. ``consolidation_state_bytes`` reports the size. Measured on a
Qwen2.5-0.5B-shaped model (``tests/biollm_core/models/test_hf_causal_lm.py::
test_qwen_half_billion_memory_figures``): Fisher + anchor in fp32 take 3.95 GB for all 494.0M parameters,
1.57 GB with ``consolidate_top_blocks=4`` (195.8M parameters, 136.1M of them the tied head/embedding).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from biollm_core.errors import UserError

log = logging.getLogger(__name__)

DTYPES: dict[str, Any] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
    "auto": "auto",
}
# Where decoder layers live in common families; otherwise: the ModuleList of num_hidden_layers modules.
LAYER_LIST_PATHS = (
    "model.layers",
    "model.decoder.layers",
    "transformer.h",
    "transformer.layers",
    "gpt_neox.layers",
    "transformer.blocks",
    "model.language_model.layers",
)
FINAL_NORM_NAMES = ("norm", "ln_f", "final_layernorm", "final_layer_norm", "norm_f")


class _StopForward(Exception):
    """Raised by the encode hook once the injection point is reached: the layers above are skipped."""


class _InjectedHidden(nn.Module):
    """Stands in for the decoder layers below the injection point during ``decode``."""

    def __init__(self, hidden: torch.Tensor, as_tuple: bool) -> None:
        super().__init__()
        self.hidden = hidden
        self.as_tuple = as_tuple

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor | tuple[torch.Tensor]:
        return (self.hidden,) if self.as_tuple else self.hidden


class HFCausalLMNeocortex(nn.Module):
    """Implements the ``Neocortex`` protocol over an ``AutoModelForCausalLM``."""

    def __init__(
        self,
        model: nn.Module,
        *,
        vocab_size: int,
        injection_fraction: float | None = None,
        consolidate_top_blocks: int | None = None,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        head = model.get_output_embeddings()
        if head is None or getattr(head, "weight", None) is None or head.weight.dim() != 2:
            raise UserError(
                f"model.hf_model_name: {type(model).__name__} has no linear LM head to cut to "
                "model.vocab_size"
            )
        if vocab_size > head.weight.shape[0]:
            raise UserError(
                f"model.vocab_size={vocab_size} exceeds the model's vocabulary "
                f"({head.weight.shape[0]} tokens)"
            )
        self.vocab_size = vocab_size
        self.hidden_size = head.weight.shape[1]
        self._layer_path = (
            find_decoder_layers(model)
            if injection_fraction is not None or consolidate_top_blocks is not None
            else None
        )
        self.injection_layer: int | None = None
        self._layer_returns_tuple = False
        if injection_fraction is not None:
            num_layers = len(self._layers)
            self.injection_layer = min(max(int(injection_fraction * num_layers + 0.5), 1), num_layers)
            self._layer_returns_tuple, self.hidden_size = self._probe_layer_output()
        if gradient_checkpointing:
            _enable_gradient_checkpointing(model)
        if consolidate_top_blocks is not None:
            self._freeze_below_top_blocks(consolidate_top_blocks)
        self._consolidation_names = [name for name, p in self.named_parameters() if p.requires_grad]

    @property
    def _layers(self) -> nn.ModuleList:
        return self.model.get_submodule(self._layer_path)

    @property
    def dtype(self) -> torch.dtype:
        return self.model.get_output_embeddings().weight.dtype

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) ids -> (B, T, H) float32 hidden state at the injection point."""
        body = self.model.base_model
        if self.injection_layer is None:
            return body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)[0].float()
        layers, k = self._layers, self.injection_layer
        captured: list[torch.Tensor] = []

        def capture(module: nn.Module, args: Any, output: Any) -> None:
            captured.append(output[0] if isinstance(output, tuple) else output)

        def stop(module: nn.Module, args: Any) -> None:
            # Raised before layer k starts, not in layer k-1's hook: under gradient checkpointing an
            # exception inside a checkpointed layer would leave that layer's frame unfinished for backward.
            raise _StopForward

        handles = [layers[k - 1].register_forward_hook(capture)]
        if k < len(layers):  # at k = L only the final norm is left to run
            handles.append(layers[k].register_forward_pre_hook(stop))
        try:
            body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        except _StopForward:
            pass
        finally:
            for handle in handles:
                handle.remove()
        return captured[0].float()

    def decode(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, H) hidden -> (B, T, V) float32 logits: the layers above the injection point and the head."""
        hidden = hidden.to(self.dtype)
        if self.injection_layer is not None:
            hidden = self._upper_layers(hidden, attention_mask)
        return self._head(hidden)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(input_ids, attention_mask), attention_mask)

    def consolidation_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Every trainable parameter, or the top ``consolidate_top_blocks`` layers + final norm + head."""
        params = dict(self.named_parameters())
        return [(name, params[name]) for name in self._consolidation_names]

    def consolidation_state_bytes(self, dtype: torch.dtype | None = None) -> int:
        """Bytes of one Fisher + one anchor copy of the consolidated parameters (default: their dtype)."""
        return 2 * parameter_bytes((p for _, p in self.consolidation_parameters()), dtype)

    def _upper_layers(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        layers, k = self._layers, self.injection_layer
        originals = [layers[i] for i in range(k)]
        stand_in = _InjectedHidden(hidden, self._layer_returns_tuple)
        # The body still needs an input: zeros of the embedding width (cheap); the stand-ins discard it.
        embedding_dim = self.model.get_input_embeddings().weight.shape[1]
        inputs_embeds = hidden.new_zeros(*hidden.shape[:2], embedding_dim)
        try:
            for i in range(k):
                layers[i] = stand_in
            return self.model.base_model(
                inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=False
            )[0]
        finally:
            for i, layer in enumerate(originals):
                layers[i] = layer

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        head = self.model.get_output_embeddings()
        bias = getattr(head, "bias", None)
        logits = F.linear(
            hidden, head.weight[: self.vocab_size], None if bias is None else bias[: self.vocab_size]
        )
        return _postprocess_logits(self.model, logits).float()  # (B, T, V)

    @torch.no_grad()
    def _probe_layer_output(self) -> tuple[bool, int]:
        """Whether a decoder layer returns a tuple (older models) or a tensor (transformers 5); its width."""
        seen: list[Any] = []
        handle = self._layers[0].register_forward_hook(lambda module, args, output: seen.append(output))
        device = self.model.get_input_embeddings().weight.device
        try:
            self.model.base_model(
                input_ids=torch.zeros(1, 2, dtype=torch.long, device=device), use_cache=False
            )
        finally:
            handle.remove()
        output = seen[0]
        as_tuple = isinstance(output, tuple)
        return as_tuple, (output[0] if as_tuple else output).shape[-1]

    def _freeze_below_top_blocks(self, top_blocks: int) -> None:
        layers = self._layers
        if top_blocks > len(layers):
            raise UserError(
                f"model.consolidate_top_blocks={top_blocks} exceeds the model's {len(layers)} decoder layers"
            )
        body = self.model.base_model
        norms = [
            getattr(body, name)
            for name in FINAL_NORM_NAMES
            if isinstance(getattr(body, name, None), nn.Module)
        ]
        if not norms:
            log.warning(
                "no final norm found on %s: consolidating only the top blocks and the head",
                type(body).__name__,
            )
        self.model.requires_grad_(False)
        for module in [*layers[len(layers) - top_blocks :], *norms, self.model.get_output_embeddings()]:
            module.requires_grad_(True)


def find_decoder_layers(model: nn.Module) -> str:
    """Dotted path of the model's decoder-layer ``ModuleList`` (e.g. ``model.layers``, ``transformer.h``)."""
    for path in LAYER_LIST_PATHS:
        try:
            candidate = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(candidate, nn.ModuleList) and len(candidate) > 0:
            return path
    config = getattr(model, "config", None)
    get_text_config = getattr(config, "get_text_config", None)
    num_layers = getattr(get_text_config() if get_text_config else config, "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and num_layers and len(module) == num_layers:
            return name
    raise UserError(
        f"cannot find the decoder layers of {type(model).__name__} "
        f"(looked for {', '.join(LAYER_LIST_PATHS)}); "
        "set model.hf_injection_fraction=null and model.consolidate_top_blocks=null"
    )


def parameter_bytes(parameters: Any, dtype: torch.dtype | None = None) -> int:
    """Bytes of one copy of ``parameters`` in ``dtype`` (default: each parameter's own dtype)."""
    total = 0
    for p in parameters:
        element = torch.empty((), dtype=dtype or p.dtype).element_size()
        total += p.numel() * element
    return total


def _postprocess_logits(model: nn.Module, logits: torch.Tensor) -> torch.Tensor:
    """Logit transforms some families apply after the head (Gemma softcap, Cohere scale, Granite scaling)."""
    config = model.config
    if getattr(model, "logit_scale", None) is not None and isinstance(model.logit_scale, (int, float)):
        logits = logits * model.logit_scale
    scaling = getattr(config, "logits_scaling", None)
    if scaling:
        logits = logits / scaling
    softcap = getattr(config, "final_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return logits


def _enable_gradient_checkpointing(model: nn.Module) -> None:
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise UserError(f"model.hf_gradient_checkpointing=true: {type(model).__name__} does not support it")
    kwargs = {"use_reentrant": False}  # the reentrant variant needs inputs that require grad; ours may not
    if hasattr(model, "activation_checkpointing_enable"):  # transformers 5
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def load_causal_lm(
    name_or_path: str,
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    torch_dtype: str = "fp32",
    attn_implementation: str | None = None,
    local_files_only: bool = False,
) -> nn.Module:
    """``AutoModelForCausalLM.from_pretrained`` with the config's options; load failures become UserError."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {
        "trust_remote_code": trust_remote_code,
        "local_files_only": local_files_only,
        "dtype": DTYPES[torch_dtype],
    }
    if revision is not None:
        kwargs["revision"] = revision
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    try:
        return AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError) as error:
        raise UserError(
            f"model.hf_model_name={name_or_path!r}: cannot load the model: "
            f"{_first_line(error)}{_offline_hint(local_files_only)}"
        ) from None


def load_tokenizer(
    name_or_path: str,
    *,
    local_files_only: bool = False,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> Any:
    """``AutoTokenizer.from_pretrained``; load failures become UserError."""
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"local_files_only": local_files_only, "trust_remote_code": trust_remote_code}
    if revision is not None:
        kwargs["revision"] = revision
    try:
        return AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError) as error:
        raise UserError(
            f"tokenizer {name_or_path!r}: cannot load: {_first_line(error)}{_offline_hint(local_files_only)}"
        ) from None


def build_hf_neocortex(
    *,
    model_name: str,
    vocab_size: int,
    revision: str | None = None,
    trust_remote_code: bool = False,
    torch_dtype: str = "fp32",
    attn_implementation: str | None = None,
    gradient_checkpointing: bool = False,
    local_files_only: bool = False,
    injection_fraction: float | None = None,
    consolidate_top_blocks: int | None = None,
) -> HFCausalLMNeocortex:
    """Build from the ``model`` section (``hf_model_name`` -> ``model_name`` etc., flat keyword arguments)."""
    model = load_causal_lm(
        model_name,
        revision=revision,
        trust_remote_code=trust_remote_code,
        torch_dtype=torch_dtype,
        attn_implementation=attn_implementation,
        local_files_only=local_files_only,
    )
    return HFCausalLMNeocortex(
        model,
        vocab_size=vocab_size,
        injection_fraction=injection_fraction,
        consolidate_top_blocks=consolidate_top_blocks,
        gradient_checkpointing=gradient_checkpointing,
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _offline_hint(local_files_only: bool) -> str:
    return (
        " (model.hf_local_files_only=true: it must be a local directory or already cached)"
        if local_files_only
        else ""
    )
