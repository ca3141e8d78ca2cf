"""discover.config: the campaign configuration, its files and its one-line errors."""

from __future__ import annotations

import json

import pytest

from discover.cli import main
from discover.config import CampaignConfig, check_names, load_config
from discover.errors import UserError


def test_defaults_round_trip_through_json():
    config = CampaignConfig()
    assert config.population_size == 100 and config.tournament_size == 2
    assert config.start == ("adam", "sgd", "lion")
    again = CampaignConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_lists_become_tuples_and_ints_floats():
    config = CampaignConfig.from_dict({"tasks": ["quadratic"], "time_limit": 5,
                                       "mutation_weights": {"change_op": 2}})
    assert config.tasks == ("quadratic",)
    assert config.time_limit == 5.0 and isinstance(config.time_limit, float)
    assert config.mutation_weights == {"change_op": 2.0}


@pytest.mark.parametrize("data, words", [
    ({"populaton_size": 10}, ["unknown configuration key", "'populaton_size'"]),
    ({"population_size": "10"}, ["'population_size'", "integer", "'10'"]),
    ({"population_size": True}, ["'population_size'", "integer"]),
    ({"time_limit": "soon"}, ["'time_limit'", "number or null"]),
    ({"tasks": "quadratic"}, ["'tasks'", "list of string"]),
    ({"tasks": [1]}, ["'tasks'", "list of string"]),
    ({"mutation_weights": {"change_op": "x"}}, ["'mutation_weights'", "table of number"]),
    ({"population_size": 0}, ["'population_size'", ">= 1"]),
    ({"population_size": 4, "tournament_size": 5}, ["'tournament_size'"]),
    ({"max_statements": 1}, ["'max_statements'"]),
    ({"tasks": []}, ["'tasks'", "at least one"]),
    ({"start": ["adam", "adam"]}, ["'start'", "repeat"]),
    ({"name": "../escape"}, ["'name'"]),
    ({"wired_slot_probability": 1.5}, ["'wired_slot_probability'", "[0, 1]"]),
])
def test_bad_values_name_the_key(data, words):
    with pytest.raises(UserError) as info:
        CampaignConfig.from_dict(data, source="c.json")
    message = str(info.value)
    assert "\n" not in message and message.startswith("c.json: ")
    for word in words:
        assert word in message


def test_files_json_and_toml(tmp_path):
    (tmp_path / "c.toml").write_text('seed = 3\ntasks = ["quadratic"]\npopulation_size = 8\n')
    (tmp_path / "c.json").write_text('{"seed": 4, "held_out_tasks": []}')
    assert load_config(tmp_path / "c.toml").population_size == 8
    assert load_config(tmp_path / "c.json").held_out_tasks == ()
    (tmp_path / "bad.toml").write_text('seed = \n')
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "typo.json").write_text('{"sead": 4}')
    with pytest.raises(UserError, match="typo.json: unknown configuration key 'sead'"):
        load_config(tmp_path / "typo.json")
    with pytest.raises(UserError, match="cannot read"):
        load_config(tmp_path / "missing.json")


def test_false_turns_off_a_setting_whose_off_is_none(tmp_path):
    """TOML cannot write null: ``false`` is "off" for a setting that is off at None (a hurdle,
    the memory cap, restarts), while a true/false setting keeps its value and ``true`` is
    still an error for a number."""
    (tmp_path / "off.toml").write_text("hurdle_percentile = false\nworker_memory_mb = false\n"
                                       "plateau_evals = false\nfingerprint_cache = false\n")
    config = load_config(tmp_path / "off.toml")
    assert config.hurdle_percentile is None and config.worker_memory_mb is None
    assert config.plateau_evals is None and config.fingerprint_cache is False
    assert CampaignConfig().hurdle_percentile is not None  # so false changed something
    (tmp_path / "on.toml").write_text("hurdle_percentile = true\n")
    with pytest.raises(UserError, match="on.toml: 'hurdle_percentile' must be"):
        load_config(tmp_path / "on.toml")


def test_a_saved_configuration_without_a_newer_key_keeps_what_the_run_was_made_with():
    """A run directory saved before ``hurdle_percentile`` existed ran without a hurdle: read
    back (resume, validation), it still has none; a saved value, null included, wins."""
    saved = {k: v for k, v in CampaignConfig(seed=5).to_dict().items()
             if k != "hurdle_percentile"}
    assert CampaignConfig.from_saved(saved).hurdle_percentile is None
    assert CampaignConfig.from_dict(saved).hurdle_percentile == CampaignConfig().hurdle_percentile
    assert CampaignConfig.from_saved({**saved, "hurdle_percentile": 40.0}).hurdle_percentile == 40.0
    assert CampaignConfig.from_saved(saved).seed == 5


def test_names_are_checked_against_the_registries():
    known = {"ops": ["add", "sign"], "task_names": ["quadratic", "logistic"],
             "baselines": ["adam", "lion"], "mutation_kinds": ["insert", "delete"]}
    check_names(CampaignConfig(tasks=("quadratic",), start=("adam",)), **known)
    check_names(CampaignConfig(tasks=("quadratic",), start=("scratch",)), **known)
    for bad, key in [({"tasks": ("quadratc",)}, "'tasks'"), ({"ops": ("sgn",)}, "'ops'"),
                     ({"start": ("adamw",)}, "'start'"),
                     ({"start": ("scratch", "adam")}, "'start'"),
                     ({"start": ("adam",), "mutation_weights": {"insrt": 1.0}},
                      "'mutation_weights'"),
                     ({"tasks": ("quadratic",), "held_out_tasks": ("quadratic",),
                       "start": ("adam",)}, "'held_out_tasks'")]:
        with pytest.raises(UserError, match=key):
            check_names(CampaignConfig(**bad), **known)


def test_cli_reports_a_bad_config_in_one_line(tmp_path, capsys):
    (tmp_path / "c.json").write_text('{"population": 10}')
    status = main(["run", "--config", str(tmp_path / "c.json"), "--out",
                   str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "unknown configuration key 'population'" in err
    assert not (tmp_path / "run").exists()


def test_run_refuses_a_non_empty_directory(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("x")
    status = main(["run", "--out", str(tmp_path / "run"), "--workers", "0"])
    assert status == 2 and "not empty" in capsys.readouterr().err
    assert (tmp_path / "run" / "keep.txt").read_text() == "x"


@pytest.mark.parametrize("command", ["run", "resume", "eval"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: discover " + command in capsys.readouterr().out


def test_the_docs_example_configuration_loads_and_sets_what_it_says(tmp_path):
    """docs/campaigns.md's annotated configuration file is a valid one: every key exists, every value
    passes the checks, and the values read back are the ones written."""
    import dataclasses
    import re
    import tomllib
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "campaigns.md").read_text(encoding="utf-8")
    text = re.search(r"of `discover\.config\.CampaignConfig`:\n\n```toml\n(.*?)```", page,
                     re.DOTALL).group(1)
    (tmp_path / "example.toml").write_text(text)
    config = load_config(tmp_path / "example.toml")
    written = tomllib.loads(text)
    fields = {f.name for f in dataclasses.fields(CampaignConfig)}
    assert set(written) <= fields
    for key, value in written.items():
        got = getattr(config, key)
        assert (list(got) if isinstance(got, tuple) else got) == value, key
