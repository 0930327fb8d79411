import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture
def count_training(monkeypatch):
    """``lintx.fit``'s training, counted: one ``(variant, layers, noise label, seeds)`` per call."""
    import lintx.fit as fit
    from lintx.train import train

    calls = []

    def counting(cfg, noise, tc, seeds, callback=None, init=None):
        calls.append((cfg.variant, cfg.layers, noise.label, seeds))
        return train(cfg, noise, tc, seeds, callback, init)

    monkeypatch.setattr(fit, "train", counting)
    return calls
