import pytest

from tinylr.rrm import results
from tinylr.rrm.train import TrainOptions


def _row(name, params, nwsr, int8, rank=0, dense=None, **extra):
    return {"name": name, "label": name, "dense": dense, "rank": rank, "params": params, "float32_bytes": 4 * params,
            "normalized_wsr_float": nwsr, "normalized_wsr_int8": int8, "int8_tflite_bytes": 20000,
            "int8_constant_bytes": 3 * params, "train_seconds": 1.0, **extra}


ROWS = [
    _row("mpgnn_w", 34305, 1.00, 0.99),
    _row("lr_w_r1", 1161, 0.985, 0.984, rank=1, dense="mpgnn_w"),      # 96.6% fewer, 1.5% lower: meets the bar
    _row("lr_w_r2", 1809, 0.999, 0.998, rank=2, dense="mpgnn_w"),      # 94.7% fewer: not enough
    _row("lr_w_r3", 1200, 0.95, 0.95, rank=3, dense="mpgnn_w"),        # 5% lower: too much
]


def test_relative_columns_and_claim():
    rel = results.relative(ROWS, ROWS[1])
    assert rel["reduction"] == pytest.approx(1 - 1161 / 34305)
    assert rel["drop_float"] == pytest.approx(0.015) and rel["drop_int8"] == pytest.approx((0.99 - 0.984) / 0.99)
    assert [r["name"] for r in results.claims(ROWS)] == ["lr_w_r1"]
    assert results.relative(ROWS, ROWS[0])["reduction"] is None      # a dense row has no MPGNN to compare with


def test_markdown_table_has_every_row_and_hook_columns():
    rows = [dict(r) for r in ROWS]
    rows[1]["c_flash_bytes"] = 6144
    table = results.markdown_table(rows)
    lines = table.splitlines()
    assert len(lines) == 2 + len(rows)
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert "generated C flash B" in lines[0] and "6,144" in lines[3] and "—" in lines[2]
    assert "96.6%" in lines[3] and "1.5%" in lines[3]


def test_doc_rewrite_keeps_the_text_around_the_table(tmp_path, monkeypatch):
    from tinylr.fsutil import write_bytes

    doc = tmp_path / "rrm.md"
    doc.write_text(f"# RRM\n\nintro\n\n{results.MARK_BEGIN}\nold table\n{results.MARK_END}\n\n## After\nkept\n")
    monkeypatch.setattr("tinylr.rrm.plots.tradeoff", lambda rows, path: write_bytes(path, b"png"))
    results.write_results(ROWS, doc, tmp_path / "img", options=TrainOptions(), scenario=results.data.DEFAULT_SCENARIO,
                          machine="test machine")
    text = doc.read_text()
    assert "old table" not in text and "intro" in text and "## After\nkept" in text
    assert "**met** by lr_w_r1" in text and "test machine" in text
    assert (tmp_path / "img" / "rrm_tradeoff.png").read_bytes() == b"png"


def test_specs_pair_every_lr_row_with_its_mpgnn():
    spec_list = results.specs()
    names = [s.name for s in spec_list]
    assert len(names) == len(set(names))
    for s in spec_list:
        if s.config.rank:
            dense = next(d for d in spec_list if d.name == s.dense)
            assert (dense.config.msg, dense.config.upd, dense.config.rank) == (s.config.msg, s.config.upd, 0)
            assert names.index(s.dense) < names.index(s.name)    # the MPGNN (to factorize) comes first
    assert results.spectra_names(spec_list) == ("mpgnn_w128", "lr_w128_r2", "svd_w128_r2")
