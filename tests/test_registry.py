"""The registry, the guard that the repo's `model_zoo` (not the fuxictr wheel's namespace package) is imported, and
that importing the library changes nothing process-wide."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import model_zoo
from conftest import REPO_ROOT
from model_zoo.errors import ConfigError
from model_zoo.registry import get_model, list_models, register_model

MISSION_MODELS = ("DIN", "DIN_SENet", "DIN_CrossNet", "FiBiNET_Bilinear", "DMF")


def test_repo_model_zoo_is_imported():
    assert model_zoo.__file__ is not None, "model_zoo resolved to the fuxictr wheel's namespace package"
    assert Path(model_zoo.__file__).resolve().parent == REPO_ROOT / "model_zoo"


def test_repo_model_zoo_is_imported_from_another_cwd(tmp_path):
    code = "import model_zoo, sys; print(model_zoo.__file__); print(','.join(model_zoo.list_models()))"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env=env)
    path, names = out.stdout.strip().splitlines()
    assert Path(path).resolve().parent == REPO_ROOT / "model_zoo"
    assert set(MISSION_MODELS) <= set(names.split(","))


def test_mission_models_registered():
    assert set(MISSION_MODELS) <= set(list_models())
    assert list_models("DI*")[0] == "DIN"


def test_unknown_model_did_you_mean():
    with pytest.raises(ConfigError, match=r"unknown model 'DNI'.*did you mean 'DIN'"):
        get_model("DNI")


def test_duplicate_registration_fails():
    class DIN:
        """Same name as a registered model, different class."""
    with pytest.raises(ConfigError, match="registered twice"):
        register_model(DIN)
    assert get_model("DIN").__module__ == "model_zoo.DIN.DIN"


def test_import_has_no_process_wide_side_effects():
    """Importing the library (every model and layer) leaves the environment and torch's threads as they were."""
    # third-party packages first (polars sets an allocator variable of its own), then the snapshot, then the zoo
    code = ("import os, torch, polars, pyarrow.parquet, sklearn, fuxictr.pytorch.models; env = dict(os.environ); "
            "threads = torch.get_num_threads(); import model_zoo, "
            "model_zoo.experiment, model_zoo.embeddings.encoders; "
            "changed = sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k)); "
            "print(changed, threads == torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "HF_HUB_OFFLINE")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True"


def test_library_imports_no_application():
    """The library (everything outside model_zoo/apps) never imports model_zoo.apps."""
    importing = re.compile(r"^\s*(from\s+model_zoo\.apps|import\s+model_zoo\.apps)", re.M)
    offenders = [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "model_zoo").rglob("*.py")
                 if "apps" not in p.relative_to(REPO_ROOT / "model_zoo").parts[:1]
                 and importing.search(p.read_text(encoding="utf-8"))]
    assert not offenders, offenders
