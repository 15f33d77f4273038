"""Train stage: the PTS-SNN model in PyTorch (float and quantization-aware), its configs and training."""
