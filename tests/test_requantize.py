"""The generated requantization helpers against TFLM's formulas, in C, on many operands:
the high multiply is written as a floor shift (one SMLAL on Arm) where TFLM nudges and
truncates; the two must agree on every input."""

from __future__ import annotations

import subprocess

from tinylr import templates

CHECK = r"""
#include <stdio.h>
#include "requantize.h"

static int32_t tflm_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * b;
    int64_t nudge = ab >= 0 ? (INT64_C(1) << 30) : (1 - (INT64_C(1) << 30));
    return (int32_t)((ab + nudge) / (INT64_C(1) << 31));
}

int main(void)
{
    const int32_t edge[] = {0, 1, -1, 2, -2, INT32_MAX, INT32_MIN, INT32_MIN + 1, 1 << 30, -(1 << 30),
                            (1 << 30) + 1, -(1 << 30) - 1, 46341, -46341, 12345, -12345};
    const unsigned n_edge = sizeof edge / sizeof edge[0];
    long bad = 0;
    for (unsigned i = 0; i < n_edge; i++)
        for (unsigned j = 0; j < n_edge; j++)
            bad += tflm_high_mul(edge[i], edge[j]) != tinylr_rounding_doubling_high_mul(edge[i], edge[j]);
    uint64_t s = 88172645463325252u;
    for (long n = 0; n < 20000000; n++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        int32_t a = (int32_t)(uint32_t)s;
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        int32_t b = (int32_t)(uint32_t)s;
        if (n & 1) a /= (int32_t)(1 + (s >> 40));  /* small magnitudes as well */
        bad += tflm_high_mul(a, b) != tinylr_rounding_doubling_high_mul(a, b);
    }
    printf("%ld\n", bad);
    return bad != 0;
}
"""


def test_high_multiply_equals_tflm_nudge_and_truncate(tmp_path):
    (tmp_path / "requantize.h").write_text(templates.render("kernels/reference/requantize.h.j2"))
    (tmp_path / "check.c").write_text(CHECK)
    exe = tmp_path / "check"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined",
                    "-fno-sanitize-recover=all", str(tmp_path / "check.c"), "-o", str(exe)], check=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "0", proc.stdout + proc.stderr
