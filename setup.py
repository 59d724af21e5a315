"""Build hook: ship the top-level ``config/`` folder inside the package as ``model_zoo/_config`` (package data).

Metadata, pins and entry points live in setup.cfg. In a source checkout ``model_zoo.config`` reads ``config/``
directly; an installed wheel has no checkout around it, so the same files travel as ``model_zoo/_config``.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["model_zoo", "model_zoo.*"]) + ["model_zoo._config", "model_zoo._config.tuner"],
    package_dir={"model_zoo._config": "config", "model_zoo._config.tuner": "config/tuner"},
    package_data={"model_zoo._config": ["*.yaml"], "model_zoo._config.tuner": ["*.yaml"], "model_zoo": ["*/*.yaml"]},
)
