"""The exact pins are set once (pyproject.toml) and repeated consistently everywhere else."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pins(lines):
    out = {}
    for line in lines:
        m = re.match(r"^\s*-?\s*\"?([A-Za-z0-9_.\-]+)==([^\s\",]+)", line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_pins_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = pins(project["dependencies"] + project["optional-dependencies"]["test"])
    assert "jax" in direct and direct["jax"] == direct["jaxlib"] == "0.10.2" and direct["optax"] == "0.2.8"
    env = pins((ROOT / "environment.yml").read_text().splitlines())
    lock = pins((ROOT / "requirements.lock").read_text().splitlines())
    assert env == direct, "environment.yml must list exactly pyproject's pins"
    for name, version in direct.items():
        assert lock.get(name) == version, f"requirements.lock disagrees with pyproject on {name}"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()


def test_make_and_every_command_default_to_the_shipped_profile():
    """One place names the shipped profile (``lintx.method.DEFAULT``): the Makefile's ``PROFILE`` agrees with it,
    and it is one of the profiles."""
    from lintx.method import DEFAULT, PROFILES

    assert DEFAULT in PROFILES
    assert f"PROFILE ?= {DEFAULT}\n" in (ROOT / "Makefile").read_text()
