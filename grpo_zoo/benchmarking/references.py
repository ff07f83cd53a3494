"""
Reference runs (the zoo's own PPO, ARS, ... entries), kept once finished and reused by later benchmarks: they do
not change when GRPO does, so an iteration on GRPO pays only for GRPO.

A run is reused only when everything that defines it is the same: its ``RunSpec`` (env, algorithm, seed, budget,
evaluation protocol, overrides) and the versions of the packages that train and evaluate it. The file name holds a
hash of both, so a changed protocol or a new rl-zoo3 simply misses and runs again.
"""

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from grpo_zoo.benchmarking.config import GRPO_ROWS, REWARD_FUNCTION_ROWS
from grpo_zoo.benchmarking.run import RunSpec

# The committed store (relative to the repository root, where benchmarks are run from)
REFERENCE_DIR = Path("benchmarks/reference")
# What defines a reference run (RunSpec fields added later for GRPO rows do not invalidate the kept runs)
DEFINING_FIELDS = (
    "env_id", "algo", "seed", "budget", "eval_freq", "n_eval_episodes", "eval_seed", "final_episodes", "final_seed",
    "overrides",
)  # fmt: skip
# Packages whose versions define a reference run's result
DEFINING_PACKAGES = ("torch", "stable_baselines3", "sb3_contrib", "rl_zoo3", "gymnasium", "numpy")


def is_reference(spec: RunSpec) -> bool:
    """Whether the run is a plain zoo entry of another algorithm (not GRPO, nor a row built on GRPO's reward)."""
    return spec.algo not in GRPO_ROWS and spec.algo not in REWARD_FUNCTION_ROWS


def fingerprint(spec: RunSpec, versions: dict[str, str]) -> str:
    """A short hash of the run's definition and the defining packages' versions."""
    fields = asdict(spec)
    defining = {
        "spec": {name: fields[name] for name in DEFINING_FIELDS},
        "versions": {name: versions.get(name) for name in DEFINING_PACKAGES},
    }
    return hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()[:12]


def reference_path(root: Path, spec: RunSpec, versions: dict[str, str]) -> Path:
    return root / spec.algo / spec.env_id / f"seed{spec.seed}_{fingerprint(spec, versions)}.json"


def load_reference(root: Path, spec: RunSpec, versions: dict[str, str]) -> dict[str, Any] | None:
    """The kept result of this run, or None."""
    path = reference_path(root, spec, versions)
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    result["reference"] = str(path)
    return result


def store_reference(root: Path, spec: RunSpec, versions: dict[str, str], result: dict[str, Any]) -> None:
    """Keep a finished (not failed) reference run, with the versions it ran with."""
    if "error" in result:
        return
    path = reference_path(root, spec, versions)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = {**result, "versions": {name: versions.get(name) for name in DEFINING_PACKAGES}}
    path.write_text(json.dumps(kept, indent=1))
