"""Registration of GRPO in rl_zoo3 (in this process, where the start-up hook ran) and hyperparams/grpo.yml."""

import argparse
import importlib
import sys
from pathlib import Path

import pytest
import yaml

import grpo_zoo
from grpo_zoo.zoo.register import grpo_hyperparams_path


@pytest.fixture(scope="module")
def grpo_yml():
    with open(grpo_hyperparams_path()) as file:
        return yaml.safe_load(file)


def test_algos_and_sampler_registered():
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
    from rl_zoo3.utils import ALGOS

    from grpo_zoo.zoo import sampler

    assert ALGOS["grpo"] is grpo_zoo.GRPO
    assert HYPERPARAMS_SAMPLER["grpo"] is sampler.sample_grpo_params
    assert HYPERPARAMS_CONVERTER["grpo"] is sampler.convert_grpo_params
    # exp_manager imported the same dict objects by name
    import rl_zoo3.exp_manager

    assert rl_zoo3.exp_manager.HYPERPARAMS_SAMPLER is HYPERPARAMS_SAMPLER
    assert rl_zoo3.exp_manager.ALGOS is ALGOS


@pytest.mark.parametrize(
    "algo, config, expected",
    [
        ("grpo", None, str(grpo_hyperparams_path())),
        ("grpo", "", str(grpo_hyperparams_path())),
        ("grpo", "other.yml", "other.yml"),
        ("grpo", "my_package.my_config", "my_package.my_config"),
        ("ppo", None, "rl_zoo3/hyperparams/ppo.yml"),
    ],
)
def test_config_path(tmp_path, algo, config, expected):
    from rl_zoo3.exp_manager import ExperimentManager

    manager = ExperimentManager(argparse.Namespace(), algo, "CartPole-v1", str(tmp_path), config=config)
    assert manager.config.endswith(expected)
    # Positional arguments bind the same way
    manager = ExperimentManager(argparse.Namespace(), algo, "CartPole-v1", str(tmp_path), "", 0, 10000, 5, -1, config=config)
    assert manager.config.endswith(expected)


def _read_entry(tmp_path, env_id, params):
    from rl_zoo3.exp_manager import ExperimentManager

    manager = ExperimentManager(argparse.Namespace(), "grpo", env_id, str(tmp_path), hyperparams=params)
    return manager.read_hyperparameters()


def test_switching_group_mode_drops_the_other_modes_keys(tmp_path, grpo_yml):
    # `-params group_mode:"'episode'" horizon:8` on the state-group Pendulum-v1 entry (the vine): its other state-only
    # key goes, with one warning; the key given with -params stays
    entry = grpo_yml["Pendulum-v1"]
    assert entry["group_mode"] == "state" and "exhaustive" not in entry
    assert {"group_size", "horizon", "branch_fraction"} <= set(entry)
    with pytest.warns(UserWarning) as record:
        hyperparams, saved = _read_entry(tmp_path, "Pendulum-v1", {"group_mode": "episode", "horizon": 8})
    assert len(record) == 1
    message = str(record[0].message)
    assert "dropped its branch_fraction, which only group_mode='state' reads" in message
    assert "branch_fraction" not in {*hyperparams, *saved}  # config.yml leaves it out too
    assert hyperparams["horizon"] == saved["horizon"] == 8
    assert hyperparams["group_size"] == entry["group_size"]  # episode groups read it


def test_switching_from_time_bins_keeps_what_both_read(tmp_path, grpo_yml):
    # The time-bin CartPole-v1 entry switched to episode groups: noise_hold is read by both, nothing is said
    assert grpo_yml["CartPole-v1"]["group_mode"] == "time" and "noise_hold" in grpo_yml["CartPole-v1"]
    hyperparams, _ = _read_entry(tmp_path, "CartPole-v1", {"group_mode": "episode"})
    assert hyperparams["noise_hold"] == grpo_yml["CartPole-v1"]["noise_hold"]
    # ... to state groups: noise_hold goes
    message = "dropped its noise_hold, which only group_mode='episode' or group_mode='time' read\\."
    with pytest.warns(UserWarning, match=message):
        hyperparams, _ = _read_entry(tmp_path, "CartPole-v1", {"group_mode": "state"})
    assert "noise_hold" not in hyperparams


def test_switching_group_mode_reads_the_table_of_modes(tmp_path, monkeypatch, recwarn):
    # A mode added to grpo_zoo.groups.modes is handled with no other change: switching to one that reads only
    # `horizon` drops the entry's other group arguments, group_size included
    from grpo_zoo.groups import modes

    monkeypatch.setitem(modes.MODES, "third", modes.ModeSpec(("horizon",), "a test mode", later_steps=False))
    hyperparams, _ = _read_entry(tmp_path, "Pendulum-v1", {"group_mode": "third"})
    assert "horizon" in hyperparams and not {"group_size", "branch_fraction"} & set(hyperparams)
    # Without a switch nothing is dropped, and nothing is said
    recwarn.clear()
    hyperparams, _ = _read_entry(tmp_path, "Pendulum-v1", {"n_envs": 2})
    assert {"group_size", "horizon", "branch_fraction"} <= set(hyperparams)
    assert not [w for w in recwarn if "group mode" in str(w.message)]


def test_hyperparams_location():
    path = grpo_hyperparams_path()
    assert path.is_file()
    package_dir = Path(grpo_zoo.__file__).resolve().parent
    # Plain install: shipped inside the package; checkout / editable install: at the repository root
    assert path in (package_dir / "hyperparams" / "grpo.yml", package_dir.parent / "hyperparams" / "grpo.yml")


def test_grpo_yml_entries(grpo_yml):
    assert "default" in grpo_yml
    # Issue 10: these learn from the env's own reward, as --algo ppo does; only MountainCar(Continuous) may keep one
    env_reward = ["CartPole-v1", "Acrobot-v1", "Pendulum-v1", "LunarLander-v3", "LunarLanderContinuous-v3"]
    env_reward += ["Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Swimmer-v5", "InvertedDoublePendulum-v5"]
    for env_id in env_reward:
        assert "reward_function" not in grpo_yml[env_id], env_id
    assert {env_id for env_id, entry in grpo_yml.items() if "reward_function" in entry} <= {
        "MountainCar-v0",
        "MountainCarContinuous-v0",
    }
    # Issue 17: time bins where they learn on every seed; the vine (state groups) on Pendulum
    assert grpo_yml["CartPole-v1"]["group_mode"] == grpo_yml["Acrobot-v1"]["group_mode"] == "time"
    assert grpo_yml["Pendulum-v1"]["group_mode"] == "state"
    for env_id, entry in grpo_yml.items():
        # `n_timesteps: 1e5` would be a string to PyYAML: use `!!float 1e5`
        assert isinstance(entry["n_timesteps"], (int, float)), env_id
        assert "policy" in entry, env_id
        if entry.get("group_mode", "time") == "episode":
            assert entry.get("n_envs", 1) % entry.get("group_size", 4) == 0, env_id


def test_grpo_yml_reward_functions_import(grpo_yml):
    # Every YAML reward function path resolves, without importing the algorithm
    paths = set()
    for entry in grpo_yml.values():
        value = entry.get("reward_function")
        paths.update(value if isinstance(value, list) else [value] if value else [])
    assert "reward_fns.mountain_car:reward" in paths
    for path in sorted(paths):
        module_name, function_name = path.split(":")
        assert callable(getattr(importlib.import_module(module_name), function_name)), path


def test_reward_function_entries():
    # hyperparams/grpo-reward-fns.yml (0.1.0's reward-function entries, `-conf` from a checkout): every reward
    # function imports and every other key is a zoo key or a GRPO argument
    import inspect

    path = Path(__file__).resolve().parent.parent / "hyperparams" / "grpo-reward-fns.yml"
    with open(path) as file:
        entries = yaml.safe_load(file)
    assert set(entries) == {"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"}
    zoo_keys = {"n_envs", "n_timesteps", "policy", "normalize", "policy_kwargs"}
    arguments = set(inspect.signature(grpo_zoo.GRPO).parameters)
    for env_id, entry in entries.items():
        module_name, function_name = entry["reward_function"].split(":")
        assert callable(getattr(importlib.import_module(module_name), function_name)), env_id
        assert set(entry) - zoo_keys <= arguments, env_id


def test_reward_fns_import_without_grpo_zoo(run_cmd, tmp_path):
    hook = ("grpo_zoo", "grpo_zoo.zoo", "grpo_zoo.zoo.hook")  # imported at start-up by the .pth hook
    script = (
        f"import sys, reward_fns.cartpole; print([m for m in sys.modules if m.startswith('grpo_zoo') and m not in {hook}])"
    )
    run = run_cmd(f'python -c "{script}"', cwd=tmp_path).check()
    assert run.stdout.strip() == "[]"


def test_grpo_zoo_import_is_light(run_cmd, tmp_path):
    run = run_cmd("python -c 'import sys, grpo_zoo; print(\"torch\" in sys.modules)'", cwd=tmp_path).check()
    assert run.stdout.strip() == "False"
    assert sys.modules  # this process may have torch: only the subprocess tells


def test_push_to_hub_model_card(tmp_path):
    # rl_zoo3 2.9.2's push_to_hub needs huggingface_sb3's generate_metadata (renamed in sb3-team-hf-integration 3.2)
    from rl_zoo3.push_to_hub import generate_model_card, save_model_card

    card, metadata = generate_model_card("grpo", "GRPO", "sb3", "CartPole-v1", 500.0, 0.0, {"group_size": 4}, {})
    assert isinstance(metadata, dict)
    assert "**GRPO** Agent playing **CartPole-v1**" in card
    save_model_card(tmp_path, card, metadata)
    readme = (tmp_path / "README.md").read_text()
    assert "library_name: stable-baselines3" in readme
    assert "500.00 +/- 0.00" in readme
