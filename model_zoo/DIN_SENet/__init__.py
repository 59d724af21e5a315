from model_zoo.DIN_SENet.DIN_SENet import DIN_SENet

__all__ = ["DIN_SENet"]
