"""SUB parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter, bit for bit,
and the test that settles in which precision TFLM computes SUB's multipliers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.modelbuild import edit
from tests.ops.build_elementwise import assert_bit_exact, constant, convert, dense, ops_of
from tinylr import codegen, hostcheck, quant, reference
from tinylr.ops import _elementwise as ew

CASES = [
    # input shape, operands as functions of (x, constant), activation, calibration scale
    ((2, 8), "x-c", "none", 1.0),
    ((1, 4, 6), "c-x", "relu", 2.0),        # constant first; broadcast (4, 1)
    ((1, 4, 6), "x-row", "none", 1.0),      # x - x[:, :1, :]: broadcast between activations
    ((1, 16), "dense-dense", "relu6", 1.0), # two branches with different scales
]


def _operands(kind, c):
    import tensorflow as tf

    return {
        "x-c": lambda x: (x, c),
        "c-x": lambda x: (c, x),
        "x-row": lambda x: (x, x[:, :1, :]),
        "dense-dense": lambda x: (dense(x, 16, 1), 2.5 * dense(x, 16, 2)),
    }[kind], {"none": lambda t: t, "relu": tf.nn.relu, "relu6": tf.nn.relu6}


@pytest.mark.slow
@pytest.mark.parametrize("shape,kind,activation,scale", CASES)
def test_sub_is_bit_exact(tmp_path, shape, kind, activation, scale):
    c = constant((4, 1) if len(shape) == 3 else (shape[-1],), seed=3, low=-2, high=2)
    operands, acts = _operands(kind, c)

    def fn(x):
        a, b = operands(x)
        return acts[activation](a - b)

    graph = assert_bit_exact(convert(fn, shape, calibration_scale=scale, seed=len(kind)), tmp_path)
    (sub,) = ops_of(graph, "SUB")
    assert sub.options["fused_activation_function"] == activation.upper()


def _sub_float32_multipliers(s1, s2, so):
    """SUB's multipliers as tflite-micro's sub_common.cc is written: float32 quotients."""
    f1, f2, fo = np.float32(s1), np.float32(s2), np.float32(so)
    twice_max = np.float32(2) * max(f1, f2)
    return [float(np.float32(f1 / twice_max)), float(np.float32(f2 / twice_max)),
            float(np.float32(twice_max / (np.float32(1 << ew.LEFT_SHIFT) * fo)))]


def _python_sub(reals, zero_points):
    """Every (x1, x2) int8 pair through TFLM's integer SUB, as a (256, 256) table [x2, x1]."""
    (m1, h1), (m2, h2), (mo, ho) = (quant.quantize_multiplier(r) for r in reals)
    mbqm = quant.multiply_by_quantized_multiplier
    v1 = [mbqm((x - zero_points[0]) << ew.LEFT_SHIFT, m1, h1) for x in range(-128, 128)]
    v2 = [mbqm((x - zero_points[1]) << ew.LEFT_SHIFT, m2, h2) for x in range(-128, 128)]
    table = [[min(127, max(-128, mbqm(a - b, mo, ho) + zero_points[2])) for a in v1] for b in v2]
    return np.asarray(table, dtype=np.int8)


# scales found by search where the float32 and double multipliers give different outputs
SCALES = (np.float32(0.081068106), np.float32(0.029480463), np.float32(0.08894252))
ZERO_POINTS = (3, -7, 5)


@pytest.mark.slow
def test_sub_multipliers_follow_the_reference_interpreter_exhaustively(tmp_path):
    """x[1, 256] - c[256, 1] with x = c = every int8 value: one sample covers all 65536
    input pairs. The float32 reading of sub_common.cc and the double-precision one
    differ on this table; TFLM, and the generated C, must agree with the double one."""
    def set_scales_and_table(m):
        sub = m.subgraphs[0]
        op = sub.operators[0]
        for index, scale, zp in zip((*op.inputs, op.outputs[0]), SCALES, ZERO_POINTS):
            sub.tensors[index].quantization.scale = [float(scale)]
            sub.tensors[index].quantization.zeroPoint = [zp]
        m.buffers[sub.tensors[op.inputs[1]].buffer].data = np.arange(-128, 128, dtype=np.int8).view(np.uint8)

    column = np.linspace(-1, 1, 256, dtype=np.float32).reshape(256, 1)
    model = edit(convert(lambda x: x - column, (1, 256)), set_scales_and_table)
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    tflm = reference.run(model, x).reshape(256, 256)

    double = _python_sub(ew.add_sub_multipliers(*SCALES), ZERO_POINTS)
    single = _python_sub(_sub_float32_multipliers(*SCALES), ZERO_POINTS)
    assert (double != single).any()      # the table tells the two apart
    assert (tflm == double).all()        # TFLM computes them in double
    codegen.generate(path, tmp_path / "src", "m")
    assert (hostcheck.run_host(tmp_path / "src", x).reshape(256, 256) == tflm).all()
