import pytest
import torch

from tinylr.layers import LowRankLinear
from tinylr.rrm.factorize import factorize, spectra
from tinylr.rrm.gnn import MPGNN, GNNConfig


def _best_rank_r(w: torch.Tensor, r: int) -> torch.Tensor:
    u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)
    return ((u[:, :r] * s[:r]) @ vh[:r]).float()


def test_factorize_gives_the_lr_mpgnn_of_that_rank_with_svd_weights():
    torch.manual_seed(1)
    dense = MPGNN(GNNConfig(msg=(32, 32), upd=(32,))).eval()
    low = factorize(dense, 2)
    assert low.config.rank == 2 and low.config.msg == (32, 32)
    fresh = MPGNN(GNNConfig(msg=(32, 32), upd=(32,), rank=2))
    assert {k: v.shape for k, v in low.state_dict().items()} == {k: v.shape for k, v in fresh.state_dict().items()}
    layers = dict(low.named_modules())
    factored = 0
    for name, m in dense.named_modules():
        if not isinstance(m, torch.nn.Linear):
            continue
        target = layers[name]
        if isinstance(target, LowRankLinear):
            factored += 1
            assert torch.allclose(target.dense_weight(), _best_rank_r(m.weight, 2), atol=1e-5)   # Eckart-Young
            assert torch.equal(target.U.bias, m.bias)
        else:  # not worth factoring (the 1-wide output): copied as is
            assert torch.equal(target.weight, m.weight)
    assert factored == 3
    assert not torch.equal(dense.state_dict()["msg.0.weight"], torch.zeros(1))   # the source is left untouched
    with pytest.raises(ValueError, match="dense"):
        factorize(low, 1)


def test_spectra_of_factored_layers_have_rank_r():
    torch.manual_seed(2)
    low = MPGNN(GNNConfig(msg=(32, 32), upd=(32,), rank=3))
    s = spectra(low)
    assert list(s) == ["msg.0", "msg.2", "upd.0", "upd.2"]
    assert all(int((v > 1e-6 * v[0]).sum()) == 3 for name, v in s.items() if name != "upd.2")
    assert len(s["upd.2"]) == 1
