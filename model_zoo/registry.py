"""Model registry: ``@register_model`` on a class, ``get_model(name)`` to find it, ``list_models()`` to enumerate."""
from __future__ import annotations

import fnmatch
from typing import Dict, List, Type, TypeVar

from model_zoo.errors import ConfigError, did_you_mean

__all__ = ["register_model", "get_model", "list_models"]

_MODELS: Dict[str, type] = {}
ModelClass = TypeVar("ModelClass", bound=type)


def register_model(cls: ModelClass) -> ModelClass:
    """Class decorator: registers ``cls`` under its class name (which is also its folder name)."""
    name = cls.__name__
    if name in _MODELS and _MODELS[name] is not cls:
        raise ConfigError(f"model '{name}' is registered twice: {_MODELS[name].__module__} and {cls.__module__}")
    _MODELS[name] = cls
    return cls


def get_model(name: str) -> Type:
    """The registered model class called ``name``; an unknown name raises ConfigError with a did-you-mean."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model '{name}'{did_you_mean(name, _MODELS)}; "
                          f"known: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def list_models(pattern: str = "*") -> List[str]:
    """Sorted names of registered models matching a shell-style ``pattern``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))
