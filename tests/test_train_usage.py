"""``nnsim train`` with no config prints its usage instead of starting a long job (issue 12, item 2)."""

from __future__ import annotations

from conftest import run_nnsim


def test_train_without_a_config_prints_usage_and_points_to_the_example(tmp_path):
    for args in ([], ["--max-epochs", "1"], ["--set", "training.epochs=1"]):
        result = run_nnsim("train", *args, cwd=tmp_path, timeout=60)
        assert result.returncode == 2, result.stdout
        assert result.stderr.startswith("Usage: nnsim train [OPTIONS] [CONFIG.toml]")
        assert "examples/fashion_mnist/train.toml" in result.stderr
        assert "--resume RUN_DIR" in result.stderr
        assert "Traceback" not in result.stderr
        assert list(tmp_path.iterdir()) == []  # no run folder, nothing trained


def test_train_help_says_a_config_is_needed():
    result = run_nnsim("train", "--help", timeout=60)
    assert result.returncode == 0
    assert "CONFIG.toml is needed unless --resume" in " ".join(result.stdout.split())
