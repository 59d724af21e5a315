from model_zoo.DIN.DIN import DIN

__all__ = ["DIN"]
