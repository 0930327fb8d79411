"""Progress reporting for the edges (notebooks, command line): never used inside the library core."""

from __future__ import annotations

from tqdm.auto import tqdm


class TqdmCallback:
    """A ``train(..., callback=...)`` that drives a tqdm bar showing the steps and the latest loss."""

    def __init__(self, total: int, desc: str = "train", **kwargs):
        self.bar = tqdm(total=total, desc=desc, **kwargs)
        self.done = 0

    def __call__(self, steps_done, chunk_losses):
        self.bar.update(steps_done - self.done)
        self.done = steps_done
        self.bar.set_postfix(loss=f"{float(min(chunk_losses)):.4g}")
        if steps_done >= self.bar.total:
            self.bar.close()
