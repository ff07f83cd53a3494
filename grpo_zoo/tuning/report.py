"""
Study outputs: trials CSV, best trial as a ``hyperparams/grpo.yml`` entry, importances, PNG plots.

Imports point down: :mod:`grpo_zoo.zoo.sampler` (the converter), :mod:`grpo_zoo.zoo.studies` (plots),
:mod:`grpo_zoo.schedules`, :mod:`grpo_zoo.groups.modes` (which keys a group mode reads).
"""

import json
import os
import warnings
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from grpo_zoo.groups.modes import DEFAULT_GROUP_MODE, MODES, arguments_in_effect, LATER_STEP_ARGUMENTS
from grpo_zoo.schedules import LINEAR_PREFIX, initial_value, linear_schedule_string
from grpo_zoo.zoo.sampler import convert_grpo_params
from grpo_zoo.zoo.studies import importance_evaluator, tuned_params, write_plots

# What a trial spent (user attributes set by grpo_zoo.tuning.objective, see grpo_zoo.zoo.budget)
COST_COLUMNS = ("user_attrs_sim_steps", "user_attrs_real_steps", "user_attrs_cpu_seconds")
# Zoo key order: normalize, n_envs, n_timesteps, policy, algorithm args, policy_kwargs last
_FIRST_KEYS = ("normalize", "n_envs", "n_timesteps", "policy")
_LAST_KEYS = ("policy_kwargs",)


def _format_value(key: str, value: Any) -> str:
    if key == "n_timesteps":
        # A bare 1e5 is a string to PyYAML
        mantissa, exponent = f"{float(value):.3e}".split("e")
        return f"!!float {mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    if isinstance(value, str) and any(char in value for char in "()[]{}:,#"):
        # As in the zoo files: policy_kwargs and import paths in double quotes
        return json.dumps(value)
    if isinstance(value, str) and value.startswith(LINEAR_PREFIX):
        return linear_schedule_string(initial_value(value, key), significant_digits=4)
    if isinstance(value, float):
        value = float(f"{value:.4g}")
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()


def best_yaml_entry(study: optuna.Study, env_id: str, base_hyperparams: dict[str, Any], comment: str = "") -> str:
    """
    The best trial as a ready-to-paste ``hyperparams/grpo.yml`` entry: the env's YAML entry
    updated with the tuned values (``lin_`` schedules, ``policy_kwargs`` as a string).

    :param study: a study with at least one complete trial
    :param env_id: the env id (YAML key)
    :param base_hyperparams: the env's entry in the YAML the study was run with (not preprocessed),
        updated with the ``-params`` of the study
    :param comment: extra comment lines (how it was tuned)
    :return: the YAML text
    """
    best = study.best_trial
    tuned = convert_grpo_params(best.params)
    hyperparams = {**base_hyperparams, **tuned}
    # Keys of the other group modes (and `supervision` without later steps to rank) have no effect: leave them out
    group_mode = hyperparams.get("group_mode", DEFAULT_GROUP_MODE)
    known = {*(name for spec in MODES.values() for name in spec.arguments), *LATER_STEP_ARGUMENTS}
    unused = known - set(arguments_in_effect(group_mode, hyperparams))
    hyperparams = {key: value for key, value in hyperparams.items() if key not in unused}
    keys = [key for key in _FIRST_KEYS if key in hyperparams]
    keys += [key for key in hyperparams if key not in _FIRST_KEYS and key not in _LAST_KEYS]
    keys += [key for key in _LAST_KEYS if key in hyperparams]
    lines = [f"# {line}" for line in comment.splitlines() if line]
    lines.append(f"{env_id}:")
    lines += [f"  {key}: {_format_value(key, hyperparams[key])}" for key in keys]
    text = "\n".join(lines) + "\n"
    # Must load back as the same entry
    assert env_id in yaml.safe_load(text), text
    return text


def param_importances(study: optuna.Study) -> tuple[dict[str, float], str]:
    """
    Parameter importances of the tuned parameters.

    :return: importances and the evaluator's name
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, "none (fewer than 2 complete trials)"
    evaluator, name = importance_evaluator()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator, params=tuned_params(study))
        except (ValueError, RuntimeError) as e:
            return {}, f"{name} failed: {e}"
    return dict(importances), name


def trials_table(study: optuna.Study) -> Any:
    """
    The trials as a ``pandas.DataFrame`` (Optuna's ``trials_dataframe``), what each spent right after its value:
    ``user_attrs_sim_steps`` (real + probe steps), ``user_attrs_real_steps``, ``user_attrs_cpu_seconds``.
    """
    table = study.trials_dataframe()
    cost = [column for column in COST_COLUMNS if column in table.columns]
    if cost and "value" in table.columns:
        rest = [column for column in table.columns if column not in cost]
        at = rest.index("value") + 1
        table = table[[*rest[:at], *cost, *rest[at:]]]
    return table


def write_report(
    study: optuna.Study,
    output_dir: str,
    env_id: str,
    base_hyperparams: dict[str, Any],
    comment: str = "",
    plots: bool = True,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """
    Write ``trials.csv``, ``best.yml`` (ready-to-paste entry), ``summary.json`` and PNG plots in ``output_dir``.

    :param settings: how trials were run and scored (``n_seeds``, ``statistic``, ``seed_statistic``, ...), copied
        into the summary
    :return: the summary (settings, counts, CPU seconds of the study, best value/params/cost, importances, files)
    """
    os.makedirs(output_dir, exist_ok=True)
    prefix = os.path.join(output_dir, study.study_name.replace("/", "_"))
    files = []
    trials_table(study).to_csv(f"{prefix}_trials.csv")
    files.append(f"{prefix}_trials.csv")

    trials = study.get_trials(deepcopy=False)
    states = [trial.state.name for trial in trials]
    summary: dict[str, Any] = {
        "study_name": study.study_name,
        "env_id": env_id,
        "settings": dict(settings or {}),
        "n_trials": len(states),
        "states": {state: states.count(state) for state in sorted(set(states))},
        # Every trial's training, pruned and failed ones included
        "cpu_seconds": round(sum(float(trial.user_attrs.get("cpu_seconds", 0.0)) for trial in trials), 3),
        "sim_steps": sum(int(trial.user_attrs.get("sim_steps", 0)) for trial in trials),
    }
    if any(state == "COMPLETE" for state in states):
        best = study.best_trial
        importances, evaluator = param_importances(study)
        summary.update(
            best_trial=best.number,
            best_value=best.value,
            best_seed_scores=best.user_attrs.get("seed_scores"),
            best_sim_steps=best.user_attrs.get("sim_steps"),
            best_real_steps=best.user_attrs.get("real_steps"),
            best_cpu_seconds=best.user_attrs.get("cpu_seconds"),
            best_params=best.params,
            importances=importances,
            importance_evaluator=evaluator,
        )
        title = f"Tuned with grpo_zoo.tune, study {study.study_name!r}: best trial {best.number}, score {best.value:.1f}"
        if "cpu_seconds" in best.user_attrs:
            title += (
                f" ({best.user_attrs['sim_steps']} simulator steps, {best.user_attrs['real_steps']} real, "
                f"{best.user_attrs['cpu_seconds']:.1f} CPU s)"
            )
        comment = f"{title}\n{comment}"
        with open(f"{prefix}_best.yml", "w") as file_handler:
            file_handler.write(best_yaml_entry(study, env_id, base_hyperparams, comment))
        files.append(f"{prefix}_best.yml")
    if plots:
        files += write_plots(study, prefix)
    summary["files"] = [*files, f"{prefix}_summary.json"]
    with open(f"{prefix}_summary.json", "w") as file_handler:
        json.dump(summary, file_handler, indent=2, default=str)
    return summary
