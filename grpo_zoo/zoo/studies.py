"""
Optuna studies of GRPO, shared by the zoo's ``-optimize`` (:mod:`grpo_zoo.zoo.patches`) and ``grpo_zoo.tune``:
open a ``--storage`` (journal file, SQLite, PostgreSQL/MySQL with heartbeats), say in one line why a storage
cannot be used, and draw a study as PNG files.

Imports: optuna (and matplotlib when plotting) only; ``grpo_zoo.tuning`` builds on this module, never the reverse.
"""

import contextlib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState


class StorageError(Exception):
    """A ``--storage`` that cannot be opened or written, with the reason and the fix in one line."""


def is_journal(storage: str) -> bool:
    """A path (not a URL): Optuna's journal file storage, as rl_zoo3's ``--storage *.log``."""
    return "://" not in storage


def storage_label(storage: str) -> str:
    """:return: the storage without the credentials of a URL (``postgresql://user:pw@host/db`` -> ``postgresql://host/db``)"""
    return storage if is_journal(storage) else re.sub(r"//[^@/]*@", "//", storage)


def _fix(storage: str, error: BaseException) -> str:
    if is_journal(storage):
        return "give a journal file in a folder you can write to, e.g. --storage logs/grpo/study.log"
    if storage.startswith("sqlite"):
        return "give an sqlite:/// file in a folder you can write to, e.g. --storage sqlite:///logs/grpo/study.db"
    if isinstance(error, ImportError):
        return 'install the driver of this database (PostgreSQL: pip install "grpo-zoo[distributed]", psycopg 3)'
    return "check the URL (dialect://user@host:port/database) and that the database server is up and reachable"


@contextlib.contextmanager
def storage_errors(storage: str) -> Iterator[None]:
    """
    Turn what a storage raises when it cannot be created, reached or written (``OSError``, a missing database
    driver, SQLAlchemy errors, Optuna's schema errors) into a :class:`StorageError` naming it and the fix.

    :param storage: the ``--storage`` argument, for the message
    """
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (OSError, ImportError, RuntimeError, SQLAlchemyError) as error:
        if isinstance(error, optuna.exceptions.UpdateFinishedTrialError):
            raise  # a race between workers, not a storage problem
        cause = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error
        reason = next((line.strip() for line in str(cause).splitlines() if line.strip()), "")
        raise StorageError(
            f"cannot use the Optuna storage `{storage_label(storage)}` ({type(cause).__name__}: {reason}): "
            f"{_fix(storage, cause)}"
        ) from error


def retry_callback(max_retry: int) -> RetryHeartbeatStaleTrialCallback:
    """Optuna's callback that re-queues a FAIL trial with the same parameters (``system_attrs["retry_history"]``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback(max_retry=max_retry)


def make_storage(
    storage: str,
    heartbeat_interval: int | None = 60,
    grace_period: int | None = None,
    max_retry: int = 3,
) -> BaseStorage:
    """
    Open a storage from a journal file path or any RDB URL (``sqlite:///``, ``postgresql://``, ``mysql://``).

    RDB storages get heartbeats: a trial whose worker stopped beating for ``grace_period`` seconds is
    marked FAIL by the next worker that starts a trial, and re-queued by Optuna's retry callback.
    Journal files have no heartbeat (``grpo_zoo.tuning.storage`` recovers the trials of dead local workers).

    :param storage: journal file path or SQLAlchemy URL (``postgresql://`` uses psycopg v3 with SQLAlchemy 2.1)
    :param heartbeat_interval: seconds between heartbeats (None: no heartbeat)
    :param grace_period: seconds without heartbeat before a trial is stale (default: 2 * interval)
    :param max_retry: how many times a trial killed mid-run is retried
    :return: the storage
    :raises StorageError: the storage cannot be created or reached
    """
    with storage_errors(storage):
        if is_journal(storage):
            Path(storage).parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(storage))
        engine_kwargs: dict = {"pool_pre_ping": True}
        if storage.startswith("sqlite"):
            # Several processes write the same file: wait for the lock instead of failing
            engine_kwargs = {"connect_args": {"timeout": 60}}
            path = storage.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        if heartbeat_interval is None:
            return RDBStorage(storage, engine_kwargs=engine_kwargs)
        with warnings.catch_warnings():
            # heartbeat_interval is an experimental argument
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                storage,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period or 2 * heartbeat_interval,
                heartbeat_stale_trial_callback=retry_callback(max_retry),
            )


def uses_heartbeats(storage: str, heartbeat_interval: int | None) -> bool:
    """:return: whether :func:`make_storage` gives this storage heartbeats (RDB storages with an interval)"""
    return not is_journal(storage) and heartbeat_interval is not None


def write_plots(study: optuna.Study, prefix: str) -> list[str]:
    """
    Optimisation history and parameter importances as PNG files (matplotlib backend of optuna: the zoo's
    plotly figures need a browser).

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
            figure: Any = ax.figure  # a Figure (typed Figure | SubFigure)
            figure.set_size_inches(10, 6)
            figure.tight_layout()
            path = f"{prefix}_{name}.png"
            figure.savefig(path, dpi=100)
            plt.close(figure)
            written.append(path)
    return written


def tuned_params(study: optuna.Study) -> list[str]:
    """Parameters that were really tuned (not the single-choice ones recording context or frozen values)."""
    names: set[str] = set()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        names.update(name for name, distribution in trial.distributions.items() if not distribution.single())
    return sorted(names)


def importance_evaluator() -> tuple[optuna.importance.BaseImportanceEvaluator, str]:
    """fANOVA when scikit-learn is installed (Optuna's default), PED-ANOVA otherwise (no extra dependency)."""
    try:
        import sklearn  # noqa: F401

        return optuna.importance.FanovaImportanceEvaluator(seed=0), "fANOVA"
    except ImportError:
        return optuna.importance.PedAnovaImportanceEvaluator(), "PED-ANOVA"
