"""The YAML that ops edit in `config/`: loaded, validated with file and line, built into a plan."""

from hotline.config.errors import ConfigError, ConfigInvalid
from hotline.config.load import LoadedConfig, load_config

__all__ = ["ConfigError", "ConfigInvalid", "LoadedConfig", "load_config"]
