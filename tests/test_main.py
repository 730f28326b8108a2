"""The demo ``python -m skdbn``: its options and its summary table."""

import re
import struct
import sys
import zlib

import numpy as np
import pytest

from skdbn.__main__ import build_parser, filter_mosaic, main, save_filters

# Small models, so that each run takes about a second.
FAST = ["--n-components", "16", "--n-iter", "2", "--dbn-hidden", "16",
        "--fine-tune-epochs", "2", "--quiet"]


def test_dbn_options_defaults():
    args = build_parser().parse_args([])
    assert args.dbn is True
    assert args.dbn_hidden == (256,)
    assert args.fine_tune_epochs == 100


def test_dbn_hidden_parses_sizes():
    args = build_parser().parse_args(["--dbn-hidden", "32,16", "--no-dbn"])
    assert args.dbn_hidden == (32, 16)
    assert args.dbn is False


@pytest.mark.parametrize("value", ["0", "16,a", "", "16,,8", "-4"])
def test_dbn_hidden_rejects_bad_sizes(value, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([f"--dbn-hidden={value}"])
    assert "--dbn-hidden" in capsys.readouterr().err


def test_summary_has_fine_tuned_dbn_row(tmp_path, capsys):
    assert main([*FAST, "--output", str(tmp_path / "filters.png")]) == 0
    out = capsys.readouterr().out
    assert "logistic regression on raw pixels" in out
    assert "logistic regression on RBM features" in out
    assert "fine-tuned DBN (PretrainedMLPClassifier)" in out
    assert "DBN fine-tuning" not in out  # --quiet: the table only
    assert "[BernoulliRBM]" not in out


def test_no_dbn_skips_it(tmp_path, capsys):
    assert main([*FAST, "--no-dbn", "--output", str(tmp_path / "filters.png")]) == 0
    out = capsys.readouterr().out
    assert "logistic regression on RBM features" in out
    assert "fine-tuned DBN" not in out
    assert "DBN pretraining" not in out


def test_default_output_is_one_line_per_phase_then_the_table(tmp_path, capsys):
    argv = [a for a in FAST if a != "--quiet"]
    output = tmp_path / "filters.png"
    assert main([*argv, "--output", str(output)]) == 0
    lines = capsys.readouterr().out.splitlines()
    table_start = lines.index("")
    phases = lines[:table_start]
    assert [line.split(" (")[0].split(":")[0] for line in phases] == [
        "logistic regression on raw pixels", "RBM", "DBN pretraining",
        "DBN fine-tuning", "filters saved to " + str(output)]
    assert all(re.search(r"\d+\.\d\d s", line) for line in phases[:4])
    assert lines[table_start + 2].startswith("model")
    assert len(lines) == table_start + 7  # blank, digits, header, rule, 3 rows
    assert output.stat().st_size > 0


def test_progress_lines_with_verbose(tmp_path, capsys):
    argv = [a for a in FAST if a != "--quiet"]
    assert main([*argv, "--verbose", "--output", str(tmp_path / "filters.png")]) == 0
    out = capsys.readouterr().out
    assert "[BernoulliRBM] Iteration 2, pseudo-likelihood = " in out
    assert "[PretrainedMLPClassifier] Epoch 2" in out


def test_picture_is_saved_without_matplotlib(tmp_path, monkeypatch):
    # As on a fresh machine after the README's install, which does not
    # install matplotlib: the picture is written by the standard library.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    output = tmp_path / "filters.png"
    components = np.random.RandomState(0).normal(size=(5, 64))
    save_filters(components, str(output))
    data = output.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    mosaic = filter_mosaic(components)
    assert (height, width) == (mosaic.shape[0] * 8, mosaic.shape[1] * 8)
    assert (depth, colour) == (8, 0)
    # The pixels decode back to the mosaic (zero weight: mid-grey).
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4:idat])[0]
    raw = np.frombuffer(zlib.decompress(data[idat + 4:idat + 4 + length]), np.uint8)
    pixels = raw.reshape(height, width + 1)[:, 1:][::8, ::8]
    expected = np.round(np.where(np.isnan(mosaic), 1, mosaic) * 255)
    np.testing.assert_array_equal(pixels, expected)
