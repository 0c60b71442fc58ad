"""Radio resource management: channel models, the WMMSE baseline, MPGNN and LR-MPGNN.

`channels` (K-user Gaussian interference channel, D2D layout), `wmmse` (baselines),
`gnn` (dense-tensor MPGNN / LR-MPGNN with one packed input), `train` (unsupervised:
loss = -mean weighted sum rate), `evaluate` (normalized WSR of float torch and int8
TFLM), `results` (the sweep table and plots), `commands` (`tinylr rrm ...`).
See docs/rrm.md. Submodules are imported on demand: torch only where it is needed.
"""
