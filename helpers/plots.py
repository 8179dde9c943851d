"""Plotting helpers shared by the notebooks (matplotlib + seaborn).

Sections follow the notebooks. Functions return the matplotlib ``Figure`` (or ``Axes``)
they drew on, so tests can inspect what was drawn.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

COURSE_PALETTE = sns.color_palette("colorblind")


def set_style() -> None:
    """One look for every notebook."""
    sns.set_theme(context="notebook", style="whitegrid", palette=COURSE_PALETTE)
    plt.rcParams.update({"figure.figsize": (9, 4), "figure.dpi": 100, "axes.titleweight": "bold"})


# --- 01: the data --------------------------------------------------------------------


# --- 02: the Bayesian funnel ---------------------------------------------------------


# --- 03: the simulator and baselines -------------------------------------------------


# --- 04: PPO -------------------------------------------------------------------------


# --- 05: training the budget agent ---------------------------------------------------
