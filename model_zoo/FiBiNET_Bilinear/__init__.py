from model_zoo.FiBiNET_Bilinear.FiBiNET_Bilinear import FiBiNET_Bilinear

__all__ = ["FiBiNET_Bilinear"]
