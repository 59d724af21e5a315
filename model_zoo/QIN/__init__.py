from model_zoo.QIN.QIN import QIN

__all__ = ["QIN"]
