"""The probe plan of state groups: which members are read off the real trajectory, simulated, or audited."""

import numpy as np

from grpo_zoo.groups.runs import Members, Runs, plan_probes


def test_plan_reads_shares_simulates_and_audits():
    # Three roots, two in env 0 and one in env 1; G = 3, member 0 took the real env's action
    env_actions = np.array([[0, 1, 1], [1, 1, 1], [0, 1, 0]])[:, :, None]  # [n_roots, G, 1]
    members = Members(
        actions=env_actions,
        env_actions=env_actions,
        log_probs=np.zeros((3, 3)),
        weights=np.full((3, 3), 1 / 3),
        real_member=np.zeros(3, dtype=int),
    )
    real_known = np.array([True, True, False])  # the real run at root 2 leaves the rollout
    plan = plan_probes(members, real_known, root_env=np.array([0, 0, 1]))

    np.testing.assert_array_equal(plan.representative, [[0, 1, 1], [0, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(plan.distinct, [True, False, True])  # root 1: one action, nothing to compare
    np.testing.assert_array_equal(plan.read, [0])  # root 0's real run is known; root 1 needs none
    # Simulated: root 0's other action, root 2's both actions; root 1's real action for one audit step (the last
    # root of env 0), root 2's real action audits env 1 while it runs
    np.testing.assert_array_equal(plan.sim_root, [0, 1, 2, 2])
    np.testing.assert_array_equal(plan.sim_member, [1, 0, 0, 1])
    np.testing.assert_array_equal(plan.audit, [False, True, True, False])
    np.testing.assert_array_equal(plan.audit_only, [False, True, False, False])

    real_runs = Runs(np.array([[10.0], [11.0], [12.0]]))
    simulated = Runs(np.array([[20.0], [21.0], [22.0], [23.0]]))
    runs, run_of = plan.gather(real_runs, simulated)
    np.testing.assert_array_equal(runs.rewards[:, 0], [10.0, 20.0, 22.0, 23.0])  # read first, then simulated (no audit)
    # Members that took the same action share a run; a group of one action has none
    np.testing.assert_array_equal(run_of, [[0, 1, 1], [-1, -1, -1], [2, 3, 2]])
