"""The thresholds landscape: the table of `prcy analyze theory` and the success figure with the theory
thresholds as vertical lines (`prcy plot thresholds`)."""
import matplotlib
matplotlib.use("Agg")

import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from prcy.analysis.landscape import theory_thresholds  # noqa: E402
from prcy.analysis.plots import draw_thresholds, plot  # noqa: E402
from prcy.analysis.theory import se_iterate  # noqa: E402
from prcy.cli import app  # noqa: E402
from prcy.io import write_dataset  # noqa: E402
from test_plots import sim_dataset  # noqa: E402

runner = CliRunner()


def test_theory_thresholds_are_ordered_and_consistent():
    rows = theory_thresholds(include_bbp=False)
    assert [r["symbol"] for r in rows] == ["alpha_WR", "alpha_IT", "alpha_AMP"]
    amp = rows[-1]["alpha"]
    assert rows[0]["alpha"] == pytest.approx(0.5, abs=1e-12) and rows[1]["alpha"] == 1.0 and 1.12 < amp < 1.14
    # independent of the fixed-point curve: iterating the state evolution from a small overlap stalls
    # below alpha_AMP and reaches perfect recovery above it
    assert se_iterate(amp - 0.02)[-1] < 0.75 and se_iterate(amp + 0.02)[-1] > 1 - 1e-9
    assert all("computed" in r["how"] or "closed form" in r["how"] or "literature" in r["how"] for r in rows)


def test_analyze_theory_prints_the_table(tmp_path):
    result = runner.invoke(app, ["analyze", "theory", "--no-bbp", "-o", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "=" in line]
    assert lines[0].split()[0] == "alpha_WR" and lines[-1].split()[0] == "alpha_AMP"
    assert "1.1285" in lines[-1]
    text = (tmp_path / "t.csv").read_text().splitlines()
    assert text[0] == "symbol,alpha,name,how" and len(text) == 4


def test_threshold_lines_on_the_success_figure(tmp_path):
    rows = [{"symbol": "alpha_A", "alpha": 1.0}, {"symbol": "alpha_B", "alpha": 6.0}]
    fig = plot([sim_dataset()], kind="success", selection={"algorithm": "gd"})
    ax = fig.axes[0]
    before = len(ax.lines)
    draw_thresholds(ax, rows)
    xs = sorted(line.get_xdata()[0] for line in ax.lines[before:])
    assert xs == [1.0, 6.0]
    lo, hi = ax.get_xlim()
    assert lo < 1.0 and hi > 6.0                      # the axis widened to hold every threshold
    assert {t.get_text().strip() for t in ax.texts} >= {"alpha_A = 1", "alpha_B = 6"}


@pytest.mark.slow
def test_prcy_plot_thresholds_command(tmp_path):
    path = write_dataset(sim_dataset(), tmp_path / "sweep.nc")
    out = tmp_path / "fig.png"
    result = runner.invoke(app, ["plot", "thresholds", str(path), "--select", "algorithm=psgd", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 10_000
