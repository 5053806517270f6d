"""Tests of the ``tracekd`` command line, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from tracekd.cli import DEFAULT_CONFIG, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo.yaml"


def _small_config(tmp_path: Path) -> Path:
    """The demo config restricted to the synthetic fixture's three tasks."""
    config = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    config["datasets"]["bAbI"]["tasks"] = ["qa1", "qa2", "qa8"]
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _one_json(text: str) -> dict:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return json.loads(lines[0])


def test_decompose_prints_report_and_writes_parquet(
    synth_babi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.parquet"
    code = main(
        ["decompose", "--dataset", "bAbI", "--raw", str(synth_babi), "--out", str(out),
         "--config", str(_small_config(tmp_path))]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = _one_json(captured.out)
    assert set(report) == {"dataset", "per_category", "dropped"}
    assert report["dataset"] == "bAbI"
    assert len(report["per_category"]) == 3
    for counts in report["per_category"].values():
        assert set(counts) == {"rows", "kept", "covered", "flagged"}
    assert out.is_file()
    frame = pl.read_parquet(out)
    assert frame.height == sum(c["kept"] for c in report["per_category"].values()) == 24
    assert report["dropped"] == {"not_sampled": 24}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_decompose_with_the_demo_config_needs_all_tasks(
    synth_babi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo config asks for 11 tasks; the fixture folder has 3: a clean error, no file."""
    out = tmp_path / "x.parquet"
    code = main(
        ["decompose", "--dataset", "bAbI", "--raw", str(synth_babi), "--out", str(out),
         "--config", str(DEMO)]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2
    assert "tracekd: error:" in captured.err and "qa4" in captured.err
    assert captured.out == ""
    assert not out.exists()


def test_decompose_is_byte_stable(synth_babi: Path, tmp_path: Path, capsys) -> None:
    config = str(_small_config(tmp_path))
    outs = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    for out in outs:
        args = ["decompose", "--dataset", "bAbI", "--raw", str(synth_babi), "--out", str(out)]
        assert main([*args, "--config", config]) == 0
    reports = capsys.readouterr().out.splitlines()
    assert reports[0] == reports[1]
    assert outs[0].read_bytes() == outs[1].read_bytes()


def test_unknown_dataset(synth_babi: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "x.parquet"
    code = main(
        ["decompose", "--dataset", "SQuAD", "--raw", str(synth_babi), "--out", str(out),
         "--config", str(DEMO)]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2
    assert "SQuAD" in captured.err and "no such dataset" in captured.err
    assert captured.out == ""
    assert not out.exists()


def test_missing_raw_folder(tmp_path: Path, capsys) -> None:
    code = main(
        ["decompose", "--dataset", "bAbI", "--raw", str(tmp_path / "nope"),
         "--out", str(tmp_path / "x.parquet"), "--config", str(_small_config(tmp_path))]
    )  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err == (
        f"tracekd: error: {tmp_path / 'nope'}: no such folder (expected the bAbI files there)\n"
    )


def test_check_config_ok(capsys) -> None:
    assert main(["check-config", str(DEMO)]) == 0
    summary = _one_json(capsys.readouterr().out)
    assert summary["datasets"] == ["CoTemp", "MARCO", "bAbI"]
    assert summary["models"] == ["tiny"]
    assert summary["settings"] == ["prompt", "vanilla", "correct", "incorrect"]


def test_check_config_broken(tmp_path: Path, capsys) -> None:
    config = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    config["training"]["epochz"] = 3
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["check-config", str(broken)]) == 2
    captured = capsys.readouterr()
    assert "training.epochz" in captured.err
    assert captured.out == ""


def test_check_config_missing_file(tmp_path: Path, capsys) -> None:
    assert main(["check-config", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["decompose", "--dataset", "bAbI"])
    assert info.value.code == 2
    assert "--raw" in capsys.readouterr().err


def test_default_config_is_the_paper_one_of_the_current_folder() -> None:
    # relative: an installed package must not point into the checkout it was built from
    assert DEFAULT_CONFIG == Path("config") / "config.yaml" and not DEFAULT_CONFIG.is_absolute()
    assert (ROOT / DEFAULT_CONFIG).is_file()
    args = build_parser().parse_args(["decompose", "--dataset", "bAbI", "--raw", "r", "--out", "o"])
    assert args.config == DEFAULT_CONFIG


def test_decompose_real_babi_default_config(
    real_babi: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the default config is the one of the folder the command runs in
    out = tmp_path / "decomposed.parquet"
    code = main(["decompose", "--dataset", "bAbI", "--raw", str(real_babi), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = _one_json(captured.out)
    per_category = report["per_category"]
    assert len(per_category) == 11
    assert sum(c["kept"] for c in per_category.values()) == 3773 + 376
    assert all(c["flagged"] == 0 for c in per_category.values())
    frame = pl.read_parquet(out)
    assert frame.group_by("split").len().sort("split").rows() == [("test", 376), ("train", 3773)]


def test_score_reference_file_matches_the_authors(real_data: Path, capsys) -> None:
    """Every released outputs file beside the project (CoTempQA and bAbI), scored from the
    command line by the paper's evaluator, gives its published acc/f1/p/r within 0.1."""
    root = real_data / "reference" / "trace_check_qa"
    files = sorted(root.glob("*/outputs_*.json"))
    if not files:
        pytest.skip(f"no reference outputs in {root}")
    for outputs in files:
        dataset = "bAbI" if outputs.parent.name == "babi" else "CoTemp"
        argv = ["score", str(outputs), "--dataset", dataset, "--format", "trace_check_qa"]
        assert main([*argv, "--variant", "paper"]) == 0
        ours = _one_json(capsys.readouterr().out)
        theirs = json.loads((outputs.parent / outputs.name.replace("outputs_", "results_")).read_text())
        for key in ("acc", "f1", "p", "r"):
            assert abs(ours[key] - theirs[key]) <= 0.1, (outputs.name, key)
        own = "babi" if dataset == "bAbI" else "cotempqa"
        assert main([*argv, "--variant", own]) == 0
        assert _one_json(capsys.readouterr().out)["variant"] == own


def test_score_rejects_an_unknown_format(tmp_path: Path, capsys) -> None:
    path = tmp_path / "x.json"
    path.write_text("")
    assert main(["score", str(path), "--format", "squad"]) == 2
    assert "unknown format" in capsys.readouterr().err
