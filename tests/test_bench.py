"""src.bench's --against: the settings it changes, and the one-line errors for a key the config lacks or another task."""

import pytest

from src.bench import against, build_parser, load_config, main
from tests.conftest import REPO


def test_against_changes_only_the_named_settings():
    cfg = load_config(["configs/default.yaml", "configs/fast.yaml"])
    other = against(cfg, ["model.pool_first=false", "data.batch_size=512"], build_parser())
    assert other["model"]["pool_first"] is False and other["data"]["batch_size"] == 512
    assert cfg["model"]["pool_first"] is True and cfg["data"]["batch_size"] == 256  # the recipe itself is untouched
    assert {k: v for k, v in other["model"].items() if k != "pool_first"} == {k: v for k, v in cfg["model"].items() if k != "pool_first"}
    assert against(cfg, [], build_parser()) is None


@pytest.mark.parametrize("item", ["model.no_such_key=1", "trainer.max_epochs=3", "model.pool_first"])
def test_against_refuses_what_it_cannot_apply(item, capsys):
    with pytest.raises(SystemExit) as exit_info:
        against(load_config(["configs/default.yaml"]), [item], build_parser())
    assert exit_info.value.code == 2
    assert f"--against {item}: expected model.KEY=VALUE" in capsys.readouterr().err


def test_the_line_readers_config_is_refused_in_one_line(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", "configs/lines.yaml"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "error: --config configs/lines.yaml: a config of the task lines; this benchmark times the digit recipes "
        "(the line reader's fit time: docs/training.md)")
