"""CONCATENATION parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter, bit
for bit, along every kind of axis, with computed and constant inputs; and the refusal
of inputs quantized unlike the output, which TFLM's int8 kernel rejects too."""

from __future__ import annotations

import numpy as np
import pytest

from tests.modelbuild import edit
from tests.ops.build_elementwise import assert_bit_exact, constant, convert, dense, ops_of
from tinylr import codegen, ir, reference
from tinylr.errors import TinylrError

CASES = [
    # input shape, inputs as a function of x, axis, expected number of inputs
    ((1, 8), lambda x: [x, dense(x, 8, 1)], -1, 2),
    ((2, 3, 4), lambda x: [x, constant((2, 2, 4), 2), 2.0 * x], 1, 3),  # a constant in the middle
    ((2, 6), lambda x: [x[::-1], x], 0, 2),                             # the outermost axis
    ((1, 2, 3, 2), lambda x: [x, x * 0.5, x, 3.0 * x, x[:, :, :, :1]], 3, 5),
]


@pytest.mark.slow
@pytest.mark.parametrize("shape,inputs,axis,count", CASES)
def test_concatenation_is_bit_exact(tmp_path, shape, inputs, axis, count):
    import tensorflow as tf

    graph = assert_bit_exact(convert(lambda x: tf.concat(inputs(x), axis=axis), shape, seed=count), tmp_path)
    (concat,) = ops_of(graph, "CONCATENATION")
    assert len(concat.inputs) == count
    out = graph.tensors[concat.outputs[0]]
    assert concat.options["axis"] in (axis, axis - len(out.shape), axis + len(out.shape))


@pytest.mark.slow
def test_concatenation_refuses_inputs_quantized_unlike_the_output(tmp_path):
    import tensorflow as tf

    def rescale_second_input(m):
        sub = m.subgraphs[0]
        concat = next(op for op in sub.operators if len(op.inputs) == 2 and sub.tensors[op.outputs[0]].shape[-1] == 16)
        q = sub.tensors[concat.inputs[1]].quantization
        q.scale = [q.scale[0] * 2]

    model = edit(convert(lambda x: tf.concat([x, dense(x, 8, 1)], axis=-1), (1, 8)), rescale_second_input)
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    assert "CONCATENATION" in ir.load(path).opcodes
    with pytest.raises(TinylrError, match="CONCATENATION: input .* quantized .* unlike the output"):
        codegen.generate(path, tmp_path / "src", "m")
    # TFLM's int8 kernel rejects the same model: refusing it is the bit-exact answer
    with pytest.raises(TinylrError, match="rejected"):
        reference.run(model, np.zeros((1, 8), dtype=np.int8))
