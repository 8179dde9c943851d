"""Shared code of the course "Reinforcement learning for marketing budget pacing".

One module per concept; dependencies point one way::

    data  <-  bayes  <-  env  <-  baselines  <-  training  <-  widgets     plots on top
                                     ppo     <-  training
    ppo   (imports nothing from helpers: generic over Gymnasium vector envs)

``training`` (PPO on the budget env measured as % of the optimum, cached runs and sweeps) sits
on top with ``plots`` and ``widgets``: it imports env, baselines and ppo; only ``widgets`` (the
epsilon lab), notebooks and benchmarks import it.
"""
