"""STRIDED_SLICE parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter, bit
for bit, over begin/end masks, negative indices and strides, shrunk axes and ranks up
to TFLM's 4-D limit; and the refusals (masks TFLM ignores, 5-D)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.modelbuild import edit
from tests.ops.build_elementwise import assert_bit_exact, convert, ops_of, walk_offsets
from tinylr import codegen, reference
from tinylr.errors import TinylrError
from tinylr.ops import _elementwise as ew
from tinylr.ops import strided_slice

CASES = [
    ((12,), lambda x: x[3:11:3]),
    ((1, 4, 6), lambda x: x[:, 1:3, ::2]),           # begin/end masks
    ((1, 4, 6), lambda x: x[:, 2, ::-1]),            # shrink axis, negative stride
    ((1, 5, 6), lambda x: x[:, -3:, 1:-1]),          # negative indices
    ((4, 3, 5), lambda x: x[::-2, 1:, -1:0:-2]),     # negative strides on two axes
    ((2, 5, 6, 3), lambda x: x[1:, 1:, ::2, 1:3]),   # 4-D
    ((2, 5, 6, 3), lambda x: x[0, :, 4, :]),         # two shrunk axes
]


@pytest.mark.slow
@pytest.mark.parametrize("case", range(len(CASES)))
def test_strided_slice_is_bit_exact(tmp_path, case):
    shape, fn = CASES[case]
    graph = assert_bit_exact(convert(fn, shape, seed=case), tmp_path)
    assert len(ops_of(graph, "STRIDED_SLICE")) == 1


def _slice_model():
    return convert(lambda x: x[:, 1:3, ::2], (1, 4, 6))


@pytest.mark.slow
@pytest.mark.parametrize("option", ["ellipsis_mask", "new_axis_mask", "offset"])
def test_strided_slice_refuses_what_tflm_ignores(tmp_path, option):
    def set_option(m):
        options = m.subgraphs[0].operators[0].builtinOptions
        setattr(options, {"ellipsis_mask": "ellipsisMask", "new_axis_mask": "newAxisMask"}.get(option, option),
                True if option == "offset" else 2)

    path = tmp_path / "m.tflite"
    path.write_bytes(edit(_slice_model(), set_option))
    with pytest.raises(TinylrError, match=f"STRIDED_SLICE: {option}.*TFLM ignores it"):
        codegen.generate(path, tmp_path / "src", "m")


@pytest.mark.slow
def test_five_dimensional_slice_is_refused_like_tflm(tmp_path):
    model = convert(lambda x: x[:, 1:, :, ::2, :], (1, 3, 2, 4, 2))
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    with pytest.raises(TinylrError, match="STRIDED_SLICE: input has rank 5; TFLM slices 1-D to 4-D"):
        codegen.generate(path, tmp_path / "src", "m")
    with pytest.raises(TinylrError, match="rejected"):
        reference.run(model, np.zeros((1, 48), dtype=np.int8))


@pytest.mark.parametrize("seed", range(40))
def test_resolved_slice_visits_what_python_slicing_selects(seed):
    """TFLM's begin/end resolution (wrap once, clamp, masks) agrees with Python's slice
    semantics, with a mask wherever the slice leaves the bound out."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 7, size=int(rng.integers(1, 5))))
    begin, end, strides, slices, begin_mask, end_mask = [], [], [], [], 0, 0
    for axis, n in enumerate(shape):
        b, e = (int(v) for v in rng.integers(-n - 2, n + 3, size=2))
        s = int(rng.choice([-3, -2, -1, 1, 2, 3]))
        b_masked, e_masked = rng.random() < 0.3, rng.random() < 0.3
        begin_mask |= b_masked << axis
        end_mask |= e_masked << axis
        begin.append(b), end.append(e), strides.append(s)
        slices.append(slice(None if b_masked else b, None if e_masked else e, s))
    expected = np.arange(int(np.prod(shape))).reshape(shape)[tuple(slices)]
    axes = strided_slice.resolve(shape, begin, end, strides, {"begin_mask": begin_mask, "end_mask": end_mask})
    assert [n for _, n, _ in axes] == list(expected.shape)
    if expected.size:
        st = ew.contiguous_strides(shape)
        walk = ew.plan_walk([n for _, n, _ in axes], [[step * s for (_, _, step), s in zip(axes, st)]])
        start = sum(b * s for (b, _, _), s in zip(axes, st))
        assert walk_offsets(walk, start=start) == expected.ravel().tolist()
