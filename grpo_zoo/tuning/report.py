"""Study outputs: trials CSV, best trial as a ``hyperparams/grpo.yml`` entry, importances, PNG plots."""

import json
import os
import warnings
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from grpo_zoo.schedules import LINEAR_PREFIX, initial_value, linear_schedule_string

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
    from grpo_zoo.zoo.sampler import convert_grpo_params

    best = study.best_trial
    tuned = convert_grpo_params(best.params)
    hyperparams = {**base_hyperparams, **tuned}
    # Keys of the other group mode have no effect: leave them out
    unused = ("supervision",) if hyperparams.get("group_mode", "state") == "state" else ("horizon", "exhaustive")
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


def tuned_params(study: optuna.Study) -> list[str]:
    """Parameters that were really tuned (not the single-choice ones recording context or frozen values)."""
    names: set[str] = set()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        names.update(name for name, distribution in trial.distributions.items() if not distribution.single())
    return sorted(names)


def importance_evaluator() -> tuple[Any, str]:
    """fANOVA when scikit-learn is installed (Optuna's default), PED-ANOVA otherwise (no extra dependency)."""
    try:
        import sklearn  # noqa: F401

        return optuna.importance.FanovaImportanceEvaluator(seed=0), "fANOVA"
    except ImportError:
        return optuna.importance.PedAnovaImportanceEvaluator(), "PED-ANOVA"


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


def write_plots(study: optuna.Study, prefix: str) -> list[str]:
    """
    Optimisation history and parameter importances as PNG files (matplotlib backend of optuna).

    :param study: the study
    :param prefix: path prefix of the files
    :return: the files written
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plt

    written = []
    with warnings.catch_warnings():
        # optuna.visualization.matplotlib is experimental
        warnings.simplefilter("ignore")
        plots = {"history": lambda: optuna_plt.plot_optimization_history(study)}
        if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= 2:
            evaluator, _ = importance_evaluator()
            params = tuned_params(study)
            plots["importances"] = lambda: optuna_plt.plot_param_importances(study, evaluator=evaluator, params=params)
        for name, plot in plots.items():
            try:
                ax = plot()
            except (ValueError, RuntimeError, ZeroDivisionError) as e:
                print(f"Could not plot {name}: {e}")
                continue
            figure: Any = ax.figure
            figure.set_size_inches(10, 6)
            figure.tight_layout()
            path = f"{prefix}_{name}.png"
            figure.savefig(path, dpi=100)
            plt.close(figure)
            written.append(path)
    return written


def write_report(
    study: optuna.Study, output_dir: str, env_id: str, base_hyperparams: dict[str, Any], comment: str = "", plots: bool = True
) -> dict[str, Any]:
    """
    Write ``trials.csv``, ``best.yml`` (ready-to-paste entry), ``summary.json`` and PNG plots in ``output_dir``.

    :return: the summary (counts, best value/params, importances, files)
    """
    os.makedirs(output_dir, exist_ok=True)
    prefix = os.path.join(output_dir, study.study_name.replace("/", "_"))
    files = []
    study.trials_dataframe().to_csv(f"{prefix}_trials.csv")
    files.append(f"{prefix}_trials.csv")

    states = [trial.state.name for trial in study.get_trials(deepcopy=False)]
    summary: dict[str, Any] = {
        "study_name": study.study_name,
        "env_id": env_id,
        "n_trials": len(states),
        "states": {state: states.count(state) for state in sorted(set(states))},
    }
    if any(state == "COMPLETE" for state in states):
        best = study.best_trial
        importances, evaluator = param_importances(study)
        summary.update(
            best_trial=best.number,
            best_value=best.value,
            best_seed_scores=best.user_attrs.get("seed_scores"),
            best_params=best.params,
            importances=importances,
            importance_evaluator=evaluator,
        )
        title = f"Tuned with grpo_zoo.tune, study {study.study_name!r}: best trial {best.number}, score {best.value:.1f}"
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
