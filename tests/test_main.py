"""The demo ``python -m skdbn``: its options and its summary table."""

import pytest

from skdbn.__main__ import build_parser, main

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
    assert "DBN fine-tuning time" in out
    assert "[BernoulliRBM]" not in out  # --quiet


def test_no_dbn_skips_it(tmp_path, capsys):
    assert main([*FAST, "--no-dbn", "--output", str(tmp_path / "filters.png")]) == 0
    out = capsys.readouterr().out
    assert "logistic regression on RBM features" in out
    assert "fine-tuned DBN" not in out
    assert "DBN pretraining time" not in out


def test_progress_lines_without_quiet(tmp_path, capsys):
    argv = [a for a in FAST if a != "--quiet"]
    assert main([*argv, "--output", str(tmp_path / "filters.png")]) == 0
    out = capsys.readouterr().out
    assert "[BernoulliRBM] Iteration" in out
    assert "[PretrainedMLPClassifier] Epoch 2" in out
