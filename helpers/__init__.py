"""Shared code of the course "Reinforcement learning for marketing budget pacing".

One module per concept; dependencies point one way::

    data  <-  bayes  <-  env  <-  baselines        plots, widgets on top
    ppo   (imports nothing from helpers: generic over Gymnasium vector envs)
"""
