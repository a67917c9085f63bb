"""configs/: the paper's setups and the demo as files that build valid runs; `_base_`
composition; flags over the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from claus import config as C
from claus import experiment

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FILES = sorted(p for p in CONFIGS.glob("*.yaml"))


def _values(argv: list[str]) -> dict:
    return experiment.file_and_flags(experiment.build_parser().parse_args(argv),
                                     experiment.AL_GROUPS)


def test_the_configs_folder_has_the_paper_and_the_demo():
    assert {p.name for p in FILES} >= {"demo.yaml", "ucf101-24-i3d.yaml", "jhmdb-21-i3d.yaml",
                                       "longtail.yaml"}


def test_longtail_config_compares_on_the_second_benchmark():
    values = _values(["--config", str(CONFIGS / "longtail.yaml")])
    exp = C.experiment_spec(values)
    assert exp.strategies == ["random", "equidistant", "entropy", "uncertainty", "claus"]
    assert exp.seeds == 8 and exp.full
    cfg = C.run_config(values, "claus", exp.first_seed)
    assert cfg.data.name == "synthetic" and cfg.data.preset == "longtail" and cfg.data.seed == 0
    assert (cfg.init_percent, cfg.target_percent) == (1, 2)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_config_builds_its_runs(path, tmp_path):
    values = _values(["--config", str(path), "--root", str(tmp_path)]) \
        if "i3d" in path.name else _values(["--config", str(path)])
    exp = C.experiment_spec(values)
    for s in exp.strategies:
        cfg = C.run_config(values, s, exp.first_seed)
        assert cfg.strategy == s and cfg.training().seed == exp.first_seed
    if "i3d" in path.name:
        assert exp.strategies == ["random", "equidistant", "entropy", "uncertainty", "claus"]
        assert cfg.init_percent == 1 and cfg.target_percent == 5 and cfg.percents == [
            1, 2, 3, 4, 5]
        assert cfg.train.model == "i3d" and cfg.train.size == 224 and cfg.cluster_cap == 0.54
        assert cfg.data.root == str(tmp_path)


def test_demo_config_is_the_main_job():
    argv = experiment.DEMO_ARGV
    main_job = _values(argv)
    from_file = _values(["--config", str(CONFIGS / "demo.yaml")])
    assert C.experiment_spec(main_job) == C.experiment_spec(from_file)
    assert C.run_config(main_job, "claus", 0) == C.run_config(from_file, "claus", 0)


def test_flags_override_the_file_and_bases_compose(tmp_path):
    values = _values(["--config", str(CONFIGS / "ucf101-24-i3d.yaml"), "--root", "x",
                      "--strategies", "claus", "--epochs", "2", "--weights", "w.pt"])
    assert values["strategies"] == ["claus"] and values["epochs"] == 2
    assert values["weights"] == "w.pt" and values["model"] == "i3d"  # from the base
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("_base_: b.yaml\nlr: 0.5\n")
    b.write_text("_base_: a.yaml\n")
    with pytest.raises(ValueError, match="loop"):
        C.load_config_file(a)
    b.write_text("lr: 0.1\nepochs: 3\n")
    assert C.load_config_file(a) == {"lr": 0.5, "epochs": 3}


def test_missing_weights_is_one_line(tmp_path, capsys):
    rc = experiment.main(["--config", str(CONFIGS / "ucf101-24-i3d.yaml"), "--root",
                          str(tmp_path), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--weights: data/rgb_imagenet.pt does not exist" in err
    assert not (tmp_path / "o").exists()
