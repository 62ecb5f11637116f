"""The lock file pins every dependency pyproject.toml names, at a version its specifier allows,
and the environment the tests run in is the locked one (runs record numpy, scipy and pyarrow)."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_every_declared_dependency_is_pinned_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    locked = _locked()
    for text in declared:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in requirements.lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), f"{name}=={locked[name]} vs {text}"


def test_the_numerical_libraries_installed_are_the_locked_ones():
    locked = _locked()
    for name in ("numpy", "scipy", "pyarrow"):
        assert importlib.metadata.version(name) == locked[name], name
