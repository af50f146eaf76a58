"""What a run is (:mod:`~multimix.config.schema`), how it is built from YAML and the command
line (:mod:`~multimix.config.loading`), the packaged configs (``yaml/``) and the paper's
presets (:mod:`~multimix.config.presets`)."""

from multimix.config.loading import (
    PACKAGED_CONFIGS,
    RANGES,
    config_yaml,
    find_config,
    load_config,
    packaged_config_names,
    parse_overrides,
    save_config,
    validate_ranges,
)
from multimix.config.schema import (
    Config,
    DataConfig,
    DistillConfig,
    InferenceConfig,
    MethodConfig,
    ModelConfig,
    RealDataConfig,
    SSLConfig,
    SyntheticConfig,
    TrainConfig,
    apply_mapping,
    set_value,
)

__all__ = [
    "PACKAGED_CONFIGS",
    "RANGES",
    "Config",
    "DataConfig",
    "DistillConfig",
    "InferenceConfig",
    "MethodConfig",
    "ModelConfig",
    "RealDataConfig",
    "SSLConfig",
    "SyntheticConfig",
    "TrainConfig",
    "apply_mapping",
    "config_yaml",
    "find_config",
    "load_config",
    "packaged_config_names",
    "parse_overrides",
    "save_config",
    "set_value",
    "validate_ranges",
]
