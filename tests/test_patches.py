"""The changes grpo_zoo.zoo.patches makes to rl-zoo3, in process: narrow, grpo-only, undone after a study."""

import argparse
import json
import sqlite3
import sys
import textwrap
from typing import ClassVar

import optuna
import pytest
from rl_zoo3.exp_manager import ExperimentManager

from grpo_zoo import GRPO
from grpo_zoo.zoo.budget import SimulatorBudgetGRPO
from grpo_zoo.zoo.patches import ERROR_EXIT_CODE, is_grpo_error, patch_experiment_manager

optuna.logging.set_verbosity(optuna.logging.WARNING)


def grpo_error() -> None:
    """A bad hyperparameter, as GRPO's checks reject it."""
    GRPO("MlpPolicy", "CartPole-v1", group_size=1)


def library_error() -> None:
    """A ValueError raised inside a library, as a bug would raise it."""
    json.loads("not json")


def _manager_class(failure):
    class Manager:
        # What the GRPO sampler reads of the zoo's experiment manager
        _hyperparams: ClassVar[dict] = {}
        custom_hyperparams = None
        n_timesteps = 100

        def __init__(self, algo="grpo", config=None, trial_id=None, verbose=1):
            self.algo, self.config, self.trial_id, self.verbose = algo, config, trial_id, verbose

        def setup_experiment(self):
            failure()

        def objective(self, trial):
            failure()

        def read_hyperparameters(self):
            return {}, {}

        def hyperparameters_optimization(self):
            pass

    patch_experiment_manager(Manager)
    return Manager


def test_is_grpo_error():
    with pytest.raises(ValueError) as grpo:
        grpo_error()
    with pytest.raises(ValueError) as library:
        library_error()
    assert is_grpo_error(grpo.value) and not is_grpo_error(library.value)
    assert not is_grpo_error(ValueError("never raised"))


def test_only_grpo_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _manager_class(grpo_error)().setup_experiment()
    assert exit_info.value.code == ERROR_EXIT_CODE
    assert capsys.readouterr().err.startswith("error: `group_size`")
    # A ValueError of a library is a bug: its traceback stays
    with pytest.raises(json.JSONDecodeError):
        _manager_class(library_error)().setup_experiment()
    # Other algorithms, and --verbose 2, are left alone
    with pytest.raises(ValueError, match="group_size"):
        _manager_class(grpo_error)(algo="ppo").setup_experiment()
    with pytest.raises(ValueError, match="group_size"):
        _manager_class(grpo_error)(verbose=2).setup_experiment()


@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_missing_entry_is_one_line_for_grpo(tmp_path, capsys, algo):
    # The zoo's own error of a hyperparameter file without the env: one line for grpo, the zoo's traceback for ppo
    conf = tmp_path / "other.yml"
    conf.write_text("Acrobot-v1:\n  policy: 'MlpPolicy'\n")
    manager = ExperimentManager(argparse.Namespace(), algo, "CartPole-v1", str(tmp_path), config=str(conf))
    if algo == "ppo":
        with pytest.raises(ValueError, match="Hyperparameters not found for ppo-CartPole-v1"):
            manager.setup_experiment()
        return
    with pytest.raises(SystemExit):
        manager.setup_experiment()
    assert capsys.readouterr().err.startswith("error: Hyperparameters not found for grpo-CartPole-v1")


def test_objective_prunes_grpo_errors_only():
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="invalid hyperparameters: `group_size`"):
        _manager_class(grpo_error)().objective(trial)
    assert "group_size" in trial.user_attrs["pruned_reason"]
    with pytest.raises(json.JSONDecodeError):
        _manager_class(library_error)().objective(study.ask())


def test_trial_id_zero_is_loaded():
    # rl_zoo3 2.9 loads --trial-id only `if self.trial_id`: trial 0 must be true, and still index trial 0
    manager = _manager_class(lambda: None)(trial_id=0)
    assert manager.trial_id and manager.trial_id == 0 and ["first", "second"][manager.trial_id] == "first"
    assert _manager_class(lambda: None)(trial_id=None).trial_id is None
    assert not _manager_class(lambda: None)(algo="ppo", trial_id=0).trial_id


# A study as rl_zoo3.exp_manager runs it: the module's own `optuna` and `ALGOS` names
ZOO_STUDY = """
def hyperparameters_optimization(self):
    seen["algo"] = ALGOS["grpo"]
    seen["process_create_study"] = sys.modules["optuna"].create_study
    study = optuna.create_study(storage=self.storage, study_name="zoo", load_if_exists=True, direction="maximize")
    study.optimize(lambda trial: 1.0, n_trials=2)
"""


def test_study_storage_and_budget_are_scoped_to_the_zoo_module(tmp_path):
    database = tmp_path / "study.db"
    zoo_module = {"optuna": optuna, "ALGOS": {"grpo": GRPO}, "sys": sys, "seen": {}}
    exec(textwrap.dedent(ZOO_STUDY), zoo_module)

    class Manager:
        algo, verbose, storage = "grpo", 0, f"sqlite:///{database}"
        hyperparameters_optimization = zoo_module["hyperparameters_optimization"]

        def __init__(self, algo=None, config=None, trial_id=None):
            pass

        def setup_experiment(self):
            pass

        def objective(self, trial):
            pass

        def read_hyperparameters(self):
            return {}, {}

    create_study = optuna.create_study
    patch_experiment_manager(Manager)
    Manager().hyperparameters_optimization()
    seen = zoo_module["seen"]
    # During the study: the zoo's algorithm counts simulator steps, and optuna itself was not changed
    assert seen["algo"] is SimulatorBudgetGRPO and seen["process_create_study"] is create_study
    # The zoo's study got the storage grpo-zoo opened, with heartbeats: each trial beat
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT COUNT(*) FROM trial_heartbeats").fetchone() == (2,)
    # After it: the zoo's module as it was
    assert zoo_module["optuna"] is optuna and zoo_module["ALGOS"]["grpo"] is GRPO
