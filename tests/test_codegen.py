import re

import numpy as np
import pytest

from tests.modelbuild import dense_stack, edit
from tinylr import cnames, codegen, hostcheck, reference
from tinylr.errors import TinylrError

EVIL = 'x */ #error broken "quote\\" \n#include <evil.h> /* ??/ \x00\x7f'


def test_identifiers_and_comments_are_sanitized():
    assert cnames.identifier("Digits-MLP v2") == "digits_mlp_v2"
    assert cnames.identifier("3layer") == "m_3layer"
    assert cnames.identifier("a" * 100) == "a" * 40
    with pytest.raises(TinylrError):
        cnames.identifier("*/--")
    text = cnames.comment(EVIL)
    assert "*/" not in text and "/*" not in text and "\n" not in text and "\x00" not in text
    assert "??" not in text


def test_float_literals_read_back_exactly():
    for v in (0.1, 1e-8, 3.0, 0.0078125, 123456.78):
        text = cnames.float_literal(v)
        assert text.endswith("f") and np.float32(text[:-1]) == np.float32(v)


@pytest.mark.slow
def test_hostile_tensor_names_cannot_break_the_c(tmp_path):
    def poison(m):
        for t in m.subgraphs[0].tensors:
            t.name = EVIL.encode()
        m.description = EVIL.encode()
    model = edit(dense_stack((12, 5, 3), activation="relu"), poison)
    path = tmp_path / "evil \"*\n.tflite"
    path.write_bytes(model)
    codegen.generate(path, tmp_path / "src", 'evil */ "name"')
    for f in (tmp_path / "src").iterdir():
        text = f.read_text()
        # the names survive only inside comments: no directive, string or trigraph escapes
        assert not re.search(r"^\s*#\s*(error|include\s*<evil)", text, re.M)
        assert "??" not in text and '\\"' not in text
    inputs = np.random.default_rng(0).integers(-128, 128, size=(50, 12), dtype=np.int8)
    # it compiles with -Wall -Wextra -Werror and still computes the right thing
    assert hostcheck.compare(reference.run(model, inputs), hostcheck.run_host(tmp_path / "src", inputs))["bit_exact"]


@pytest.mark.slow
def test_unsupported_ops_are_all_named_at_once(tmp_path):
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    def swap_opcodes(m):  # both layers become an op the generator does not know
        for code in m.operatorCodes:
            code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.SVDF

    model = dense_stack((8, 6, 4), activation="relu")
    path = tmp_path / "m.tflite"
    path.write_bytes(edit(model, swap_opcodes))
    with pytest.raises(TinylrError) as err:
        codegen.generate(path, tmp_path / "src", "m")
    msg = str(err.value)
    assert "op #0 SVDF is not supported" in msg and "op #1 SVDF is not supported" in msg
    assert "The model's ops: SVDF." in msg
    assert not (tmp_path / "src").exists()


@pytest.mark.slow
def test_float_model_is_refused(tmp_path):
    import tensorflow as tf

    inp = tf.keras.Input((4,), batch_size=1)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(2)(inp))
    path = tmp_path / "float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    with pytest.raises(TinylrError, match="FLOAT32 end to end, not quantized INT8"):
        codegen.generate(path, tmp_path / "src", "m")
    assert not (tmp_path / "src").exists()


@pytest.mark.slow
def test_failed_regeneration_leaves_no_stale_sources(tmp_path):
    good, bad = tmp_path / "good.tflite", tmp_path / "bad.tflite"
    good.write_bytes(dense_stack((8, 4)))
    bad.write_bytes(b"not a model at all")
    codegen.generate(good, tmp_path / "src", "m")
    assert (tmp_path / "src" / "manifest.json").exists()
    with pytest.raises(TinylrError):
        codegen.generate(bad, tmp_path / "src", "m")
    # an older model's sources must not pass for the new one's, and no staging dir remains
    assert not (tmp_path / "src").exists()
    assert not list(tmp_path.glob(".src.*"))


@pytest.mark.parametrize("name", ["softmax", "requantize", "main", "semihost", "fully-connected"])
def test_model_names_that_collide_with_generated_files_are_refused(name):
    with pytest.raises(TinylrError, match="collide with the generated file"):
        codegen.check_name(cnames.identifier(name))
    codegen.check_name("digits_mlp")  # an ordinary name passes
