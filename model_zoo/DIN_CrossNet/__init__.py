from model_zoo.DIN_CrossNet.DIN_CrossNet import DIN_CrossNet, build_crossnet

__all__ = ["DIN_CrossNet", "build_crossnet"]
