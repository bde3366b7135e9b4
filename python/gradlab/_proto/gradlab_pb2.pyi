from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_HEALTHY: _ClassVar[Verdict]
    VERDICT_VANISHING: _ClassVar[Verdict]
    VERDICT_EXPLODING: _ClassVar[Verdict]
    VERDICT_DEAD: _ClassVar[Verdict]
    VERDICT_NOT_LEARNING: _ClassVar[Verdict]
    VERDICT_COLLAPSING: _ClassVar[Verdict]

class SweepState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWEEP_STATE_UNSPECIFIED: _ClassVar[SweepState]
    SWEEP_STATE_QUEUED: _ClassVar[SweepState]
    SWEEP_STATE_RUNNING: _ClassVar[SweepState]
    SWEEP_STATE_SUCCEEDED: _ClassVar[SweepState]
    SWEEP_STATE_FAILED: _ClassVar[SweepState]
    SWEEP_STATE_CANCELLED: _ClassVar[SweepState]

class WeightsFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEIGHTS_FORMAT_UNSPECIFIED: _ClassVar[WeightsFormat]
    WEIGHTS_FORMAT_SAFETENSORS: _ClassVar[WeightsFormat]
    WEIGHTS_FORMAT_NPZ: _ClassVar[WeightsFormat]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
VERDICT_UNSPECIFIED: Verdict
VERDICT_HEALTHY: Verdict
VERDICT_VANISHING: Verdict
VERDICT_EXPLODING: Verdict
VERDICT_DEAD: Verdict
VERDICT_NOT_LEARNING: Verdict
VERDICT_COLLAPSING: Verdict
SWEEP_STATE_UNSPECIFIED: SweepState
SWEEP_STATE_QUEUED: SweepState
SWEEP_STATE_RUNNING: SweepState
SWEEP_STATE_SUCCEEDED: SweepState
SWEEP_STATE_FAILED: SweepState
SWEEP_STATE_CANCELLED: SweepState
WEIGHTS_FORMAT_UNSPECIFIED: WeightsFormat
WEIGHTS_FORMAT_SAFETENSORS: WeightsFormat
WEIGHTS_FORMAT_NPZ: WeightsFormat

class ForkRequest(_message.Message):
    __slots__ = ("job_id", "at_step", "changes")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AT_STEP_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    at_step: int
    changes: JobSpec
    def __init__(self, job_id: _Optional[int] = ..., at_step: _Optional[int] = ..., changes: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("name", "labels", "activation", "output_activation", "hidden", "depth", "width", "init", "sigma_w", "sigma_b", "loss", "optimizer", "lr", "schedule", "weight_decay", "clip_norm", "batch", "steps", "eval_every", "dataset", "test_fraction", "standardize", "seed", "record_every", "histogram_every", "stop_on_nonfinite", "thresholds", "checkpoint_every_steps", "checkpoint_every_seconds", "checkpoint_keep", "keep_checkpoints")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    SIGMA_W_FIELD_NUMBER: _ClassVar[int]
    SIGMA_B_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    LR_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    CLIP_NORM_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    EVAL_EVERY_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    TEST_FRACTION_FIELD_NUMBER: _ClassVar[int]
    STANDARDIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RECORD_EVERY_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_EVERY_FIELD_NUMBER: _ClassVar[int]
    STOP_ON_NONFINITE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_EVERY_STEPS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_EVERY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_KEEP_FIELD_NUMBER: _ClassVar[int]
    KEEP_CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    labels: _containers.ScalarMap[str, str]
    activation: str
    output_activation: str
    hidden: _containers.RepeatedScalarFieldContainer[int]
    depth: int
    width: int
    init: str
    sigma_w: float
    sigma_b: float
    loss: str
    optimizer: str
    lr: float
    schedule: str
    weight_decay: float
    clip_norm: float
    batch: int
    steps: int
    eval_every: int
    dataset: str
    test_fraction: float
    standardize: bool
    seed: int
    record_every: int
    histogram_every: int
    stop_on_nonfinite: bool
    thresholds: Thresholds
    checkpoint_every_steps: int
    checkpoint_every_seconds: float
    checkpoint_keep: int
    keep_checkpoints: bool
    def __init__(self, name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., activation: _Optional[str] = ..., output_activation: _Optional[str] = ..., hidden: _Optional[_Iterable[int]] = ..., depth: _Optional[int] = ..., width: _Optional[int] = ..., init: _Optional[str] = ..., sigma_w: _Optional[float] = ..., sigma_b: _Optional[float] = ..., loss: _Optional[str] = ..., optimizer: _Optional[str] = ..., lr: _Optional[float] = ..., schedule: _Optional[str] = ..., weight_decay: _Optional[float] = ..., clip_norm: _Optional[float] = ..., batch: _Optional[int] = ..., steps: _Optional[int] = ..., eval_every: _Optional[int] = ..., dataset: _Optional[str] = ..., test_fraction: _Optional[float] = ..., standardize: bool = ..., seed: _Optional[int] = ..., record_every: _Optional[int] = ..., histogram_every: _Optional[int] = ..., stop_on_nonfinite: bool = ..., thresholds: _Optional[_Union[Thresholds, _Mapping]] = ..., checkpoint_every_steps: _Optional[int] = ..., checkpoint_every_seconds: _Optional[float] = ..., checkpoint_keep: _Optional[int] = ..., keep_checkpoints: bool = ...) -> None: ...

class Thresholds(_message.Message):
    __slots__ = ("vanish_ratio", "explode_ratio", "explode_growth", "dead_fraction", "chance_margin", "collapse_ratio", "min_learned")
    VANISH_RATIO_FIELD_NUMBER: _ClassVar[int]
    EXPLODE_RATIO_FIELD_NUMBER: _ClassVar[int]
    EXPLODE_GROWTH_FIELD_NUMBER: _ClassVar[int]
    DEAD_FRACTION_FIELD_NUMBER: _ClassVar[int]
    CHANCE_MARGIN_FIELD_NUMBER: _ClassVar[int]
    COLLAPSE_RATIO_FIELD_NUMBER: _ClassVar[int]
    MIN_LEARNED_FIELD_NUMBER: _ClassVar[int]
    vanish_ratio: float
    explode_ratio: float
    explode_growth: float
    dead_fraction: float
    chance_margin: float
    collapse_ratio: float
    min_learned: float
    def __init__(self, vanish_ratio: _Optional[float] = ..., explode_ratio: _Optional[float] = ..., explode_growth: _Optional[float] = ..., dead_fraction: _Optional[float] = ..., chance_margin: _Optional[float] = ..., collapse_ratio: _Optional[float] = ..., min_learned: _Optional[float] = ...) -> None: ...

class JobId(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "spec", "state", "steps_done", "total_steps", "created_ms", "started_ms", "finished_ms", "summary", "error", "sweep_id", "worker", "attempt", "resumed_from", "checkpoints", "parent_id", "fork_step")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEPS_DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    STARTED_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_MS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FROM_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    FORK_STEP_FIELD_NUMBER: _ClassVar[int]
    id: int
    spec: JobSpec
    state: JobState
    steps_done: int
    total_steps: int
    created_ms: int
    started_ms: int
    finished_ms: int
    summary: Summary
    error: str
    sweep_id: int
    worker: str
    attempt: int
    resumed_from: int
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    parent_id: int
    fork_step: int
    def __init__(self, id: _Optional[int] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., steps_done: _Optional[int] = ..., total_steps: _Optional[int] = ..., created_ms: _Optional[int] = ..., started_ms: _Optional[int] = ..., finished_ms: _Optional[int] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ..., error: _Optional[str] = ..., sweep_id: _Optional[int] = ..., worker: _Optional[str] = ..., attempt: _Optional[int] = ..., resumed_from: _Optional[int] = ..., checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ..., parent_id: _Optional[int] = ..., fork_step: _Optional[int] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("step", "bytes", "created_ms")
    STEP_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    step: int
    bytes: int
    created_ms: int
    def __init__(self, step: _Optional[int] = ..., bytes: _Optional[int] = ..., created_ms: _Optional[int] = ...) -> None: ...

class Summary(_message.Message):
    __slots__ = ("steps_done", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "verdict", "verdict_reason", "ratio_at_init", "ratio_at_end", "stopped_early", "mean_field")
    STEPS_DONE_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TEST_LOSS_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    VERDICT_REASON_FIELD_NUMBER: _ClassVar[int]
    RATIO_AT_INIT_FIELD_NUMBER: _ClassVar[int]
    RATIO_AT_END_FIELD_NUMBER: _ClassVar[int]
    STOPPED_EARLY_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_FIELD_NUMBER: _ClassVar[int]
    steps_done: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    verdict: Verdict
    verdict_reason: str
    ratio_at_init: float
    ratio_at_end: float
    stopped_early: bool
    mean_field: MeanField
    def __init__(self, steps_done: _Optional[int] = ..., train_loss: _Optional[float] = ..., train_accuracy: _Optional[float] = ..., test_loss: _Optional[float] = ..., test_accuracy: _Optional[float] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., verdict_reason: _Optional[str] = ..., ratio_at_init: _Optional[float] = ..., ratio_at_end: _Optional[float] = ..., stopped_early: bool = ..., mean_field: _Optional[_Union[MeanField, _Mapping]] = ...) -> None: ...

class MeanField(_message.Message):
    __slots__ = ("sigma_w", "sigma_b", "q_star", "fixed_point", "chi1", "regime", "depth_scale", "first_last_ratio", "layer_ratios")
    SIGMA_W_FIELD_NUMBER: _ClassVar[int]
    SIGMA_B_FIELD_NUMBER: _ClassVar[int]
    Q_STAR_FIELD_NUMBER: _ClassVar[int]
    FIXED_POINT_FIELD_NUMBER: _ClassVar[int]
    CHI1_FIELD_NUMBER: _ClassVar[int]
    REGIME_FIELD_NUMBER: _ClassVar[int]
    DEPTH_SCALE_FIELD_NUMBER: _ClassVar[int]
    FIRST_LAST_RATIO_FIELD_NUMBER: _ClassVar[int]
    LAYER_RATIOS_FIELD_NUMBER: _ClassVar[int]
    sigma_w: float
    sigma_b: float
    q_star: float
    fixed_point: str
    chi1: float
    regime: str
    depth_scale: float
    first_last_ratio: float
    layer_ratios: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, sigma_w: _Optional[float] = ..., sigma_b: _Optional[float] = ..., q_star: _Optional[float] = ..., fixed_point: _Optional[str] = ..., chi1: _Optional[float] = ..., regime: _Optional[str] = ..., depth_scale: _Optional[float] = ..., first_last_ratio: _Optional[float] = ..., layer_ratios: _Optional[_Iterable[float]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("states", "activation", "min_depth", "max_depth", "label", "verdict", "name_contains", "sweep_id", "oldest_first", "page_size", "page_token", "finished_before_ms", "filter", "sort_by", "descending")
    STATES_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    MIN_DEPTH_FIELD_NUMBER: _ClassVar[int]
    MAX_DEPTH_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    OLDEST_FIRST_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FINISHED_BEFORE_MS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SORT_BY_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[JobState]
    activation: str
    min_depth: int
    max_depth: int
    label: str
    verdict: Verdict
    name_contains: str
    sweep_id: int
    oldest_first: bool
    page_size: int
    page_token: str
    finished_before_ms: int
    filter: str
    sort_by: str
    descending: bool
    def __init__(self, states: _Optional[_Iterable[_Union[JobState, str]]] = ..., activation: _Optional[str] = ..., min_depth: _Optional[int] = ..., max_depth: _Optional[int] = ..., label: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., name_contains: _Optional[str] = ..., sweep_id: _Optional[int] = ..., oldest_first: bool = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., finished_before_ms: _Optional[int] = ..., filter: _Optional[str] = ..., sort_by: _Optional[str] = ..., descending: bool = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("job_id", "from_step", "max_batch")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_STEP_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    from_step: int
    max_batch: int
    def __init__(self, job_id: _Optional[int] = ..., from_step: _Optional[int] = ..., max_batch: _Optional[int] = ...) -> None: ...

class LayerStats(_message.Message):
    __slots__ = ("grad_norm", "bias_grad_norm", "err_norm", "grad_mean_abs", "grad_max_abs", "weight_norm", "update_ratio", "act_mean", "act_std", "saturated", "dead", "nonfinite")
    GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    BIAS_GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    ERR_NORM_FIELD_NUMBER: _ClassVar[int]
    GRAD_MEAN_ABS_FIELD_NUMBER: _ClassVar[int]
    GRAD_MAX_ABS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_NORM_FIELD_NUMBER: _ClassVar[int]
    UPDATE_RATIO_FIELD_NUMBER: _ClassVar[int]
    ACT_MEAN_FIELD_NUMBER: _ClassVar[int]
    ACT_STD_FIELD_NUMBER: _ClassVar[int]
    SATURATED_FIELD_NUMBER: _ClassVar[int]
    DEAD_FIELD_NUMBER: _ClassVar[int]
    NONFINITE_FIELD_NUMBER: _ClassVar[int]
    grad_norm: float
    bias_grad_norm: float
    err_norm: float
    grad_mean_abs: float
    grad_max_abs: float
    weight_norm: float
    update_ratio: float
    act_mean: float
    act_std: float
    saturated: float
    dead: float
    nonfinite: int
    def __init__(self, grad_norm: _Optional[float] = ..., bias_grad_norm: _Optional[float] = ..., err_norm: _Optional[float] = ..., grad_mean_abs: _Optional[float] = ..., grad_max_abs: _Optional[float] = ..., weight_norm: _Optional[float] = ..., update_ratio: _Optional[float] = ..., act_mean: _Optional[float] = ..., act_std: _Optional[float] = ..., saturated: _Optional[float] = ..., dead: _Optional[float] = ..., nonfinite: _Optional[int] = ...) -> None: ...

class Histogram(_message.Message):
    __slots__ = ("log10_lo", "per_decade", "counts", "zeros", "underflow", "overflow", "nonfinite")
    LOG10_LO_FIELD_NUMBER: _ClassVar[int]
    PER_DECADE_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    ZEROS_FIELD_NUMBER: _ClassVar[int]
    UNDERFLOW_FIELD_NUMBER: _ClassVar[int]
    OVERFLOW_FIELD_NUMBER: _ClassVar[int]
    NONFINITE_FIELD_NUMBER: _ClassVar[int]
    log10_lo: int
    per_decade: int
    counts: _containers.RepeatedScalarFieldContainer[int]
    zeros: int
    underflow: int
    overflow: int
    nonfinite: int
    def __init__(self, log10_lo: _Optional[int] = ..., per_decade: _Optional[int] = ..., counts: _Optional[_Iterable[int]] = ..., zeros: _Optional[int] = ..., underflow: _Optional[int] = ..., overflow: _Optional[int] = ..., nonfinite: _Optional[int] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("id", "cancel")
    ID_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    id: int
    cancel: bool
    def __init__(self, id: _Optional[int] = ..., cancel: bool = ...) -> None: ...

class DeleteJobResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class DeleteSweepRequest(_message.Message):
    __slots__ = ("id", "cancel")
    ID_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    id: int
    cancel: bool
    def __init__(self, id: _Optional[int] = ..., cancel: bool = ...) -> None: ...

class DeleteSweepResponse(_message.Message):
    __slots__ = ("id", "jobs_deleted")
    ID_FIELD_NUMBER: _ClassVar[int]
    JOBS_DELETED_FIELD_NUMBER: _ClassVar[int]
    id: int
    jobs_deleted: int
    def __init__(self, id: _Optional[int] = ..., jobs_deleted: _Optional[int] = ...) -> None: ...

class GcRequest(_message.Message):
    __slots__ = ("finished_before_ms", "dry_run", "vacuum")
    FINISHED_BEFORE_MS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    VACUUM_FIELD_NUMBER: _ClassVar[int]
    finished_before_ms: int
    dry_run: bool
    vacuum: bool
    def __init__(self, finished_before_ms: _Optional[int] = ..., dry_run: bool = ..., vacuum: bool = ...) -> None: ...

class GcResponse(_message.Message):
    __slots__ = ("job_ids", "sweeps_deleted", "bytes_before", "bytes_after")
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    SWEEPS_DELETED_FIELD_NUMBER: _ClassVar[int]
    BYTES_BEFORE_FIELD_NUMBER: _ClassVar[int]
    BYTES_AFTER_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[int]
    sweeps_deleted: int
    bytes_before: int
    bytes_after: int
    def __init__(self, job_ids: _Optional[_Iterable[int]] = ..., sweeps_deleted: _Optional[int] = ..., bytes_before: _Optional[int] = ..., bytes_after: _Optional[int] = ...) -> None: ...

class UpdateJobRequest(_message.Message):
    __slots__ = ("id", "name", "set_labels", "remove_labels")
    class SetLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SET_LABELS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_LABELS_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    set_labels: _containers.ScalarMap[str, str]
    remove_labels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., set_labels: _Optional[_Mapping[str, str]] = ..., remove_labels: _Optional[_Iterable[str]] = ...) -> None: ...

class HistogramsRequest(_message.Message):
    __slots__ = ("job_id", "layers", "from_step", "to_step", "max_steps")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    FROM_STEP_FIELD_NUMBER: _ClassVar[int]
    TO_STEP_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    layers: _containers.RepeatedScalarFieldContainer[int]
    from_step: int
    to_step: int
    max_steps: int
    def __init__(self, job_id: _Optional[int] = ..., layers: _Optional[_Iterable[int]] = ..., from_step: _Optional[int] = ..., to_step: _Optional[int] = ..., max_steps: _Optional[int] = ...) -> None: ...

class LayerHistograms(_message.Message):
    __slots__ = ("layer", "histograms")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAMS_FIELD_NUMBER: _ClassVar[int]
    layer: int
    histograms: _containers.RepeatedCompositeFieldContainer[Histogram]
    def __init__(self, layer: _Optional[int] = ..., histograms: _Optional[_Iterable[_Union[Histogram, _Mapping]]] = ...) -> None: ...

class Histograms(_message.Message):
    __slots__ = ("job_id", "steps", "layers")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    steps: _containers.RepeatedScalarFieldContainer[int]
    layers: _containers.RepeatedCompositeFieldContainer[LayerHistograms]
    def __init__(self, job_id: _Optional[int] = ..., steps: _Optional[_Iterable[int]] = ..., layers: _Optional[_Iterable[_Union[LayerHistograms, _Mapping]]] = ...) -> None: ...

class StepEvent(_message.Message):
    __slots__ = ("step", "loss", "accuracy", "lr", "grad_norm", "layers", "histograms")
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    LR_FIELD_NUMBER: _ClassVar[int]
    GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAMS_FIELD_NUMBER: _ClassVar[int]
    step: int
    loss: float
    accuracy: float
    lr: float
    grad_norm: float
    layers: _containers.RepeatedCompositeFieldContainer[LayerStats]
    histograms: _containers.RepeatedCompositeFieldContainer[Histogram]
    def __init__(self, step: _Optional[int] = ..., loss: _Optional[float] = ..., accuracy: _Optional[float] = ..., lr: _Optional[float] = ..., grad_norm: _Optional[float] = ..., layers: _Optional[_Iterable[_Union[LayerStats, _Mapping]]] = ..., histograms: _Optional[_Iterable[_Union[Histogram, _Mapping]]] = ...) -> None: ...

class EvalEvent(_message.Message):
    __slots__ = ("step", "test_loss", "test_accuracy")
    STEP_FIELD_NUMBER: _ClassVar[int]
    TEST_LOSS_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    step: int
    test_loss: float
    test_accuracy: float
    def __init__(self, step: _Optional[int] = ..., test_loss: _Optional[float] = ..., test_accuracy: _Optional[float] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("step", "eval", "job", "steps")
    STEP_FIELD_NUMBER: _ClassVar[int]
    EVAL_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    step: StepEvent
    eval: EvalEvent
    job: Job
    steps: StepBatch
    def __init__(self, step: _Optional[_Union[StepEvent, _Mapping]] = ..., eval: _Optional[_Union[EvalEvent, _Mapping]] = ..., job: _Optional[_Union[Job, _Mapping]] = ..., steps: _Optional[_Union[StepBatch, _Mapping]] = ...) -> None: ...

class StepBatch(_message.Message):
    __slots__ = ("steps",)
    STEPS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[StepEvent]
    def __init__(self, steps: _Optional[_Iterable[_Union[StepEvent, _Mapping]]] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("job_id", "layers", "metrics", "from_step", "to_step", "max_points")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    FROM_STEP_FIELD_NUMBER: _ClassVar[int]
    TO_STEP_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    layers: _containers.RepeatedScalarFieldContainer[int]
    metrics: _containers.RepeatedScalarFieldContainer[str]
    from_step: int
    to_step: int
    max_points: int
    def __init__(self, job_id: _Optional[int] = ..., layers: _Optional[_Iterable[int]] = ..., metrics: _Optional[_Iterable[str]] = ..., from_step: _Optional[int] = ..., to_step: _Optional[int] = ..., max_points: _Optional[int] = ...) -> None: ...

class Series(_message.Message):
    __slots__ = ("layer", "metric", "steps", "values", "min", "max")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    layer: int
    metric: str
    steps: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    min: _containers.RepeatedScalarFieldContainer[float]
    max: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, layer: _Optional[int] = ..., metric: _Optional[str] = ..., steps: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ..., min: _Optional[_Iterable[float]] = ..., max: _Optional[_Iterable[float]] = ...) -> None: ...

class History(_message.Message):
    __slots__ = ("job_id", "series", "evals")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    EVALS_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    series: _containers.RepeatedCompositeFieldContainer[Series]
    evals: _containers.RepeatedCompositeFieldContainer[EvalEvent]
    def __init__(self, job_id: _Optional[int] = ..., series: _Optional[_Iterable[_Union[Series, _Mapping]]] = ..., evals: _Optional[_Iterable[_Union[EvalEvent, _Mapping]]] = ...) -> None: ...

class Column(_message.Message):
    __slots__ = ("metric", "values", "min", "max")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    metric: str
    values: _containers.RepeatedScalarFieldContainer[float]
    min: _containers.RepeatedScalarFieldContainer[float]
    max: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, metric: _Optional[str] = ..., values: _Optional[_Iterable[float]] = ..., min: _Optional[_Iterable[float]] = ..., max: _Optional[_Iterable[float]] = ...) -> None: ...

class HistoryChunk(_message.Message):
    __slots__ = ("job_id", "layer", "steps", "columns", "evals", "downsampled")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LAYER_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    EVALS_FIELD_NUMBER: _ClassVar[int]
    DOWNSAMPLED_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    layer: int
    steps: _containers.RepeatedScalarFieldContainer[int]
    columns: _containers.RepeatedCompositeFieldContainer[Column]
    evals: _containers.RepeatedCompositeFieldContainer[EvalEvent]
    downsampled: bool
    def __init__(self, job_id: _Optional[int] = ..., layer: _Optional[int] = ..., steps: _Optional[_Iterable[int]] = ..., columns: _Optional[_Iterable[_Union[Column, _Mapping]]] = ..., evals: _Optional[_Iterable[_Union[EvalEvent, _Mapping]]] = ..., downsampled: bool = ...) -> None: ...

class Axis(_message.Message):
    __slots__ = ("field", "values")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    field: str
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, field: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class SweepSpec(_message.Message):
    __slots__ = ("name", "base", "axes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    AXES_FIELD_NUMBER: _ClassVar[int]
    name: str
    base: JobSpec
    axes: _containers.RepeatedCompositeFieldContainer[Axis]
    def __init__(self, name: _Optional[str] = ..., base: _Optional[_Union[JobSpec, _Mapping]] = ..., axes: _Optional[_Iterable[_Union[Axis, _Mapping]]] = ...) -> None: ...

class SweepId(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class JobCounts(_message.Message):
    __slots__ = ("queued", "running", "succeeded", "failed", "cancelled", "total")
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    total: int
    def __init__(self, queued: _Optional[int] = ..., running: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class Sweep(_message.Message):
    __slots__ = ("id", "spec", "state", "counts", "created_ms", "cancelled_ms", "finished_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_MS_FIELD_NUMBER: _ClassVar[int]
    id: int
    spec: SweepSpec
    state: SweepState
    counts: JobCounts
    created_ms: int
    cancelled_ms: int
    finished_ms: int
    def __init__(self, id: _Optional[int] = ..., spec: _Optional[_Union[SweepSpec, _Mapping]] = ..., state: _Optional[_Union[SweepState, str]] = ..., counts: _Optional[_Union[JobCounts, _Mapping]] = ..., created_ms: _Optional[int] = ..., cancelled_ms: _Optional[int] = ..., finished_ms: _Optional[int] = ...) -> None: ...

class ListSweepsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSweepsResponse(_message.Message):
    __slots__ = ("sweeps", "next_page_token")
    SWEEPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sweeps: _containers.RepeatedCompositeFieldContainer[Sweep]
    next_page_token: str
    def __init__(self, sweeps: _Optional[_Iterable[_Union[Sweep, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListPresetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Preset(_message.Message):
    __slots__ = ("name", "about", "spec")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ABOUT_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    name: str
    about: str
    spec: SweepSpec
    def __init__(self, name: _Optional[str] = ..., about: _Optional[str] = ..., spec: _Optional[_Union[SweepSpec, _Mapping]] = ...) -> None: ...

class ListPresetsResponse(_message.Message):
    __slots__ = ("presets",)
    PRESETS_FIELD_NUMBER: _ClassVar[int]
    presets: _containers.RepeatedCompositeFieldContainer[Preset]
    def __init__(self, presets: _Optional[_Iterable[_Union[Preset, _Mapping]]] = ...) -> None: ...

class SweepProgress(_message.Message):
    __slots__ = ("sweep", "job", "counts")
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    job: Job
    counts: JobCounts
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ..., job: _Optional[_Union[Job, _Mapping]] = ..., counts: _Optional[_Union[JobCounts, _Mapping]] = ...) -> None: ...

class SweepReportRequest(_message.Message):
    __slots__ = ("sweep_id", "margin")
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    MARGIN_FIELD_NUMBER: _ClassVar[int]
    sweep_id: int
    margin: float
    def __init__(self, sweep_id: _Optional[int] = ..., margin: _Optional[float] = ...) -> None: ...

class AxisValue(_message.Message):
    __slots__ = ("field", "value")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    field: str
    value: str
    def __init__(self, field: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Stat(_message.Message):
    __slots__ = ("n", "mean", "std")
    N_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    n: int
    mean: float
    std: float
    def __init__(self, n: _Optional[int] = ..., mean: _Optional[float] = ..., std: _Optional[float] = ...) -> None: ...

class LrResult(_message.Message):
    __slots__ = ("lr", "finished", "mean_test_accuracy")
    LR_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    MEAN_TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    lr: str
    finished: int
    mean_test_accuracy: float
    def __init__(self, lr: _Optional[str] = ..., finished: _Optional[int] = ..., mean_test_accuracy: _Optional[float] = ...) -> None: ...

class ReportCell(_message.Message):
    __slots__ = ("values", "jobs_total", "jobs_finished", "best_lr", "by_lr", "test_accuracy", "test_loss", "nonfinite_test_loss", "verdicts", "ratio_at_init", "ratio_at_end", "predicted_ratio", "chi1_mean")
    class VerdictsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VALUES_FIELD_NUMBER: _ClassVar[int]
    JOBS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    JOBS_FINISHED_FIELD_NUMBER: _ClassVar[int]
    BEST_LR_FIELD_NUMBER: _ClassVar[int]
    BY_LR_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TEST_LOSS_FIELD_NUMBER: _ClassVar[int]
    NONFINITE_TEST_LOSS_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    RATIO_AT_INIT_FIELD_NUMBER: _ClassVar[int]
    RATIO_AT_END_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_RATIO_FIELD_NUMBER: _ClassVar[int]
    CHI1_MEAN_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[AxisValue]
    jobs_total: int
    jobs_finished: int
    best_lr: str
    by_lr: _containers.RepeatedCompositeFieldContainer[LrResult]
    test_accuracy: Stat
    test_loss: Stat
    nonfinite_test_loss: int
    verdicts: _containers.ScalarMap[str, int]
    ratio_at_init: float
    ratio_at_end: float
    predicted_ratio: float
    chi1_mean: float
    def __init__(self, values: _Optional[_Iterable[_Union[AxisValue, _Mapping]]] = ..., jobs_total: _Optional[int] = ..., jobs_finished: _Optional[int] = ..., best_lr: _Optional[str] = ..., by_lr: _Optional[_Iterable[_Union[LrResult, _Mapping]]] = ..., test_accuracy: _Optional[_Union[Stat, _Mapping]] = ..., test_loss: _Optional[_Union[Stat, _Mapping]] = ..., nonfinite_test_loss: _Optional[int] = ..., verdicts: _Optional[_Mapping[str, int]] = ..., ratio_at_init: _Optional[float] = ..., ratio_at_end: _Optional[float] = ..., predicted_ratio: _Optional[float] = ..., chi1_mean: _Optional[float] = ...) -> None: ...

class DepthPoint(_message.Message):
    __slots__ = ("depth", "mean_test_accuracy", "within_margin")
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    MEAN_TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    WITHIN_MARGIN_FIELD_NUMBER: _ClassVar[int]
    depth: int
    mean_test_accuracy: float
    within_margin: bool
    def __init__(self, depth: _Optional[int] = ..., mean_test_accuracy: _Optional[float] = ..., within_margin: bool = ...) -> None: ...

class TrainableDepth(_message.Message):
    __slots__ = ("group", "activation", "reference_accuracy", "points", "trainable_depth", "deepest_swept", "recovered_at")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    TRAINABLE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    DEEPEST_SWEPT_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_AT_FIELD_NUMBER: _ClassVar[int]
    group: _containers.RepeatedCompositeFieldContainer[AxisValue]
    activation: str
    reference_accuracy: float
    points: _containers.RepeatedCompositeFieldContainer[DepthPoint]
    trainable_depth: int
    deepest_swept: int
    recovered_at: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, group: _Optional[_Iterable[_Union[AxisValue, _Mapping]]] = ..., activation: _Optional[str] = ..., reference_accuracy: _Optional[float] = ..., points: _Optional[_Iterable[_Union[DepthPoint, _Mapping]]] = ..., trainable_depth: _Optional[int] = ..., deepest_swept: _Optional[int] = ..., recovered_at: _Optional[_Iterable[int]] = ...) -> None: ...

class MeasuredDepth(_message.Message):
    __slots__ = ("group", "trainable_depth", "deepest_swept", "supported")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    TRAINABLE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    DEEPEST_SWEPT_FIELD_NUMBER: _ClassVar[int]
    SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    group: _containers.RepeatedCompositeFieldContainer[AxisValue]
    trainable_depth: int
    deepest_swept: int
    supported: bool
    def __init__(self, group: _Optional[_Iterable[_Union[AxisValue, _Mapping]]] = ..., trainable_depth: _Optional[int] = ..., deepest_swept: _Optional[int] = ..., supported: bool = ...) -> None: ...

class ClaimCheck(_message.Message):
    __slots__ = ("activation", "claimed_kind", "claimed_depth", "measured", "supported", "note", "verdict")
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_KIND_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_DEPTH_FIELD_NUMBER: _ClassVar[int]
    MEASURED_FIELD_NUMBER: _ClassVar[int]
    SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    activation: str
    claimed_kind: str
    claimed_depth: int
    measured: _containers.RepeatedCompositeFieldContainer[MeasuredDepth]
    supported: bool
    note: str
    verdict: str
    def __init__(self, activation: _Optional[str] = ..., claimed_kind: _Optional[str] = ..., claimed_depth: _Optional[int] = ..., measured: _Optional[_Iterable[_Union[MeasuredDepth, _Mapping]]] = ..., supported: bool = ..., note: _Optional[str] = ..., verdict: _Optional[str] = ...) -> None: ...

class SweepReport(_message.Message):
    __slots__ = ("sweep_id", "sweep", "cell_axes", "lr_is_axis", "margin", "steps", "jobs_total", "jobs_finished", "jobs_unmatched", "cells", "trainable", "claims", "rules", "state")
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    CELL_AXES_FIELD_NUMBER: _ClassVar[int]
    LR_IS_AXIS_FIELD_NUMBER: _ClassVar[int]
    MARGIN_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    JOBS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    JOBS_FINISHED_FIELD_NUMBER: _ClassVar[int]
    JOBS_UNMATCHED_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    TRAINABLE_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    sweep_id: int
    sweep: str
    cell_axes: _containers.RepeatedScalarFieldContainer[str]
    lr_is_axis: bool
    margin: float
    steps: int
    jobs_total: int
    jobs_finished: int
    jobs_unmatched: int
    cells: _containers.RepeatedCompositeFieldContainer[ReportCell]
    trainable: _containers.RepeatedCompositeFieldContainer[TrainableDepth]
    claims: _containers.RepeatedCompositeFieldContainer[ClaimCheck]
    rules: _containers.RepeatedScalarFieldContainer[str]
    state: SweepState
    def __init__(self, sweep_id: _Optional[int] = ..., sweep: _Optional[str] = ..., cell_axes: _Optional[_Iterable[str]] = ..., lr_is_axis: bool = ..., margin: _Optional[float] = ..., steps: _Optional[int] = ..., jobs_total: _Optional[int] = ..., jobs_finished: _Optional[int] = ..., jobs_unmatched: _Optional[int] = ..., cells: _Optional[_Iterable[_Union[ReportCell, _Mapping]]] = ..., trainable: _Optional[_Iterable[_Union[TrainableDepth, _Mapping]]] = ..., claims: _Optional[_Iterable[_Union[ClaimCheck, _Mapping]]] = ..., rules: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[SweepState, str]] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("job_id", "step", "format")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    step: int
    format: WeightsFormat
    def __init__(self, job_id: _Optional[int] = ..., step: _Optional[int] = ..., format: _Optional[_Union[WeightsFormat, str]] = ...) -> None: ...

class ExportChunk(_message.Message):
    __slots__ = ("data", "step", "total_bytes")
    DATA_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    step: int
    total_bytes: int
    def __init__(self, data: _Optional[bytes] = ..., step: _Optional[int] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("job_id", "step", "inputs", "input_dim")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_DIM_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    step: int
    inputs: _containers.RepeatedScalarFieldContainer[float]
    input_dim: int
    def __init__(self, job_id: _Optional[int] = ..., step: _Optional[int] = ..., inputs: _Optional[_Iterable[float]] = ..., input_dim: _Optional[int] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("step", "rows", "outputs", "values")
    STEP_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    step: int
    rows: int
    outputs: int
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, step: _Optional[int] = ..., rows: _Optional[int] = ..., outputs: _Optional[int] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...
