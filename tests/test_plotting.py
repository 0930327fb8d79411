import matplotlib.pyplot as plt
import numpy as np

from lintx import plotting, validate


def test_a_log_curve_keeps_points_at_or_below_zero_at_the_floor():
    fig, ax = plt.subplots()
    plotting.log_curve(ax, [0, 1, 2, 3], [0.5, -0.01, 0.0, 0.2], floor=1e-3, color="r")
    line, marks = ax.lines
    np.testing.assert_array_equal(line.get_ydata(), [0.5, 1e-3, 1e-3, 0.2])  # unbroken
    np.testing.assert_array_equal(marks.get_xdata(), [1, 2])  # and marked where it was <= 0
    plt.close(fig)


def test_one_figure_legend_lists_each_label_once():
    fig, axes = plt.subplots(1, 3)
    for ax in axes:
        ax.plot([0, 1], [1, 2], label="DIAG")
        ax.axhline(1, label="ADARR")
    axes[2].plot([0, 1], [2, 3], label="FULL")
    plotting.figure_legend(fig, axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["DIAG", "ADARR", "FULL"]
    plt.close(fig)


def test_every_panel_gets_the_same_sigma_resolution():
    assert len(validate.sigma_points(21, 1.0)) == len(validate.sigma_points(21, 8.0)) == 21
    assert validate.sigma_points(3, 1.0) == [0.0, 0.5, 1.0]
