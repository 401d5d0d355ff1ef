"""PNG figures (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_learning_curve(path: str | Path, train: tuple[list, list], evaluation: tuple[list, list], title: str,
                        random_return: float | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    if train[0]:
        ax.plot(train[0], train[1], ".", alpha=0.5, label="training episodes (stochastic)")
    if evaluation[0]:
        ax.plot(evaluation[0], evaluation[1], "o-", label="evaluation episodes (deterministic)")
    if random_return is not None:
        ax.axhline(random_return, color="grey", linestyle="--", label=f"random policy ({random_return:.1f})")
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)

