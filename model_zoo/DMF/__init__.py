from model_zoo.DMF.DMF import DMF

__all__ = ["DMF"]
