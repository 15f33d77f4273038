"""ptsnn: PyTorch spiking speech-emotion networks onto Loihi-style neuromorphic hardware.

Stages (each a subpackage; data flows forward only):
frontend (host features) -> train (PTS-SNN in PyTorch) -> convert (chip IR, passes, writers)
-> deploy (Lava process graph, fast bit-exact simulator, verification) -> report.
"""

__version__ = "0.1.0"
