"""The registry, and the guard that the repo's `model_zoo` (not the fuxictr wheel's namespace package) is imported."""
import os
from pathlib import Path
import subprocess
import sys

import pytest

import model_zoo
from model_zoo.config import REPO_ROOT
from model_zoo.errors import ConfigError
from model_zoo.registry import get_model, list_models, register_model

MISSION_MODELS = ("DIN", "DIN_SENet", "DIN_CrossNet", "FiBiNET_Bilinear", "DMF")


def test_repo_model_zoo_is_imported():
    assert model_zoo.__file__ is not None, "model_zoo resolved to the fuxictr wheel's namespace package"
    assert Path(model_zoo.__file__).resolve().parent == REPO_ROOT / "model_zoo"


def test_repo_model_zoo_is_imported_from_another_cwd(tmp_path):
    code = "import model_zoo, sys; print(model_zoo.__file__); print(','.join(model_zoo.list_models()))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
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


@pytest.mark.parametrize("preset, expected", [(None, "AUTO,STRICT"), ("COMPATIBLE", "COMPATIBLE")])
def test_import_asks_mkl_for_reproducible_results_unless_set(preset, expected):
    """``import model_zoo`` sets MKL_CBWR (strict conditional numerical reproducibility) and keeps a user's value."""
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    if preset:
        env["MKL_CBWR"] = preset
    out = subprocess.run([sys.executable, "-c", "import os, model_zoo; print(os.environ['MKL_CBWR'])"], env=env,
                         capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.strip() == expected
