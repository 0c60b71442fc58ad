"""Integer requantization parameters, computed exactly as TFLite Micro computes them.

The generated kernels only do integer arithmetic; every float-to-fixed-point decision
happens here, at generation time, in the same precision and rounding as TFLM's
`QuantizeMultiplier`, `GetQuantizedConvolutionMultipler` and
`CalculateActivationRangeQuantized`, so the C gives the reference's answers bit for bit.
See docs/quantization.md.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: float) -> float:
    """C's round()/std::round: halves go away from zero (Python's round() goes to even)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(q31 significand, power-of-two exponent) with real ≈ q · 2^(exponent-31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:  # everything would shift out: TFLM flushes to zero
        return 0, 0
    return q_fixed, shift


def conv_multipliers(input_scale: float, filter_scales: np.ndarray, output_scale: float) -> tuple[list[int], list[int]]:
    """Per-output-channel multipliers and shifts for FULLY_CONNECTED.

    Per-channel weights: the scale product is taken in double. Per-tensor weights: TFLM's
    FULLY_CONNECTED multiplies the two float32 scales in float32 first, then widens — a
    different double, sometimes a different multiplier, so we follow it. (CONV_2D and
    DEPTHWISE_CONV_2D take the double product in both cases: see ops/_spatial.py.)
    """
    filter_scales = np.asarray(filter_scales, dtype=np.float32)
    if filter_scales.size > 1:
        reals = [float(np.float64(input_scale) * np.float64(s) / np.float64(output_scale)) for s in filter_scales]
    else:
        product = np.float32(np.float32(input_scale) * filter_scales[0])
        reals = [float(np.float64(product) / np.float64(output_scale))]
    pairs = [quantize_multiplier(r) for r in reals]
    return [m for m, _ in pairs], [s for _, s in pairs]


def _quantize_f32(value: float, scale: float, zero_point: int) -> int:
    # TfLiteRound(f / scale) in float32, as CalculateActivationRangeQuantized does
    quotient = np.float32(np.float32(value) / np.float32(scale))
    return zero_point + int(round_half_away(float(quotient)))


def activation_range(activation: str, scale: float, zero_point: int,
                     qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """Clamp bounds of a fused activation on a quantized output."""
    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, _quantize_f32(0.0, scale, zero_point)), qmax
    if activation == "RELU6":
        return (max(qmin, _quantize_f32(0.0, scale, zero_point)),
                min(qmax, _quantize_f32(6.0, scale, zero_point)))
    if activation == "RELU_N1_TO_1":
        return (max(qmin, _quantize_f32(-1.0, scale, zero_point)),
                min(qmax, _quantize_f32(1.0, scale, zero_point)))
    raise ValueError(f"fused activation {activation} has no integer clamp")


# --- Python model of the integer kernels (for tests of the arithmetic itself) ----------

def _saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _trunc_div(ab + nudge, 1 << 31)  # C's int64 division truncates toward zero


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _rounding_divide_by_pot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def _wrap32(x: int) -> int:
    return ((x + (1 << 31)) % (1 << 32)) - (1 << 31)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLM's default (double-rounding) MultiplyByQuantizedMultiplier on int32."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return _rounding_divide_by_pot(
        _saturating_rounding_doubling_high_mul(_wrap32(x * (1 << left)), multiplier), right
    )
