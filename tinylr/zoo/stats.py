"""Parameters and multiply-accumulates of a torch model, counted as the deployed int8 model has them.

One forward pass of a single sample with hooks on the compute layers:
- Conv2d: MACs = output elements x (in_channels / groups) x kernel height x width,
  padding positions included (the kernels multiply by the zero point there too);
- Linear: MACs = output elements x in_features (every call counts: a reused layer runs twice);
- a BatchNorm that directly follows a Conv2d/Linear is folded into it on export, so
  it adds no parameters of its own, only a bias to a layer that had none;
  any other BatchNorm is counted as its scale and shift.
Parameters are counted once per module, however often it runs. Pooling, additions
and activations cost no MACs here, as in the MLPerf Tiny figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["ModelStats", "count"]

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass(frozen=True)
class ModelStats:
    params: int                 # weights and biases as deployed (batch norms folded)
    macs: int                   # multiply-accumulates for one sample
    torch_params: int           # parameters of the torch module, batch-norm affines included
    layers: list[dict] = field(default_factory=list)  # one entry per Conv2d/Linear call, in order

    def to_json(self) -> dict:
        return {"params": self.params, "macs": self.macs, "torch_params": self.torch_params}


@torch.no_grad()
def count(model: nn.Module, input_shape: tuple[int, ...]) -> ModelStats:
    """Count `model` on one sample of `input_shape` (without the batch dimension)."""
    calls: list[dict] = []
    produced: dict[int, tuple] = {}  # id(output) -> (output, call); holding the tensor keeps its id unique
    folded: set[int] = set()          # ids of batch-norm modules that follow a layer

    def compute_hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            per_output = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        else:
            per_output = module.in_features
        call = {"module": module, "kind": type(module).__name__, "macs": output.numel() * per_output,
                "output_shape": tuple(output.shape[1:]), "bias": module.bias is not None}
        calls.append(call)
        produced[id(output)] = (output, call)

    def norm_hook(module, inputs, output):
        tensor, call = produced.get(id(inputs[0]), (None, None))
        if tensor is inputs[0]:
            folded.add(id(module))
            call["bias"] = True

    hooks = []
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            hooks.append(module.register_forward_hook(compute_hook))
        elif isinstance(module, _BATCH_NORMS):
            hooks.append(module.register_forward_hook(norm_hook))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()

    params, seen = 0, set()
    for call in calls:
        module = call["module"]
        if id(module) in seen:
            continue
        seen.add(id(module))
        out_features = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        params += module.weight.numel() + (out_features if call["bias"] else 0)
    for module in model.modules():
        if isinstance(module, _BATCH_NORMS) and id(module) not in folded and module.affine:
            params += 2 * module.num_features
    layers = [{k: v for k, v in c.items() if k != "module"} for c in calls]
    return ModelStats(params=params, macs=sum(c["macs"] for c in calls),
                      torch_params=sum(p.numel() for p in model.parameters()), layers=layers)
