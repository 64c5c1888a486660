"""pyproject.toml, the two locks, environment.yml, postBuild and the Makefile agree;
the set-up check of 00_setup.ipynb and `make setup`'s Python check say the right thing."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from attention_course import environment

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import deps  # noqa: E402

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
DEV_ONLY_TOOLS = ("ruff", "uv", "jupyter-repo2docker", "jupyter-book", "playwright", "pytest")
#: torch release -> the torchvision release built for it
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
TORCHVISION_FOR = {"2.6": "0.21", "2.7": "0.22", "2.8": "0.23", "2.9": "0.24"}


def pinned(name: str = "requirements.txt") -> dict[str, list[Requirement]]:
    pins: dict[str, list[Requirement]] = {}
    for line in (ROOT / name).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith(("#", "-")):
            req = Requirement(line)
            pins.setdefault(req.name.lower().replace("_", "-"), []).append(req)
    return pins


def declared() -> list[Requirement]:
    extras = PYPROJECT["project"]["optional-dependencies"]
    return RUNTIME + [Requirement(r) for r in extras["dev"] + extras["test"]]


def test_every_declared_dependency_is_pinned_within_its_range():
    pins = pinned()
    for req in declared():
        name = req.name.lower()
        assert name in pins, (
            f"{name} is declared in pyproject.toml but missing from requirements.txt (make lock)"
        )
        for pin in pins[name]:
            (spec,) = pin.specifier
            assert spec.operator == "==", f"requirements.txt must pin exactly: {pin}"
            assert req.specifier.contains(spec.version, prereleases=True), (
                f"requirements.txt pins {pin} outside pyproject's range {req} (make lock)"
            )


def test_the_test_extra_is_part_of_dev():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert set(extras["test"]) <= set(extras["dev"])


def test_torch_pair_is_the_matched_registry_pair_and_not_the_image_wheel():
    pins = pinned()
    assert [str(p.specifier) for p in pins["torch"]] == ["==2.14.1"]
    assert [str(p.specifier) for p in pins["torchvision"]] == ["==0.29.2"]


def test_runtime_lock_is_the_runtime_subset_of_the_tested_lock():
    full, runtime = pinned(), pinned("requirements-runtime.txt")
    for name, reqs in runtime.items():
        assert name in full, f"{name} is in requirements-runtime.txt only (make lock)"
        # the same versions (uv may write a marker in another, equivalent form)
        assert {str(r.specifier) for r in reqs} <= {str(r.specifier) for r in full[name]}, (
            f"{name}: requirements-runtime.txt and requirements.txt differ (make lock)"
        )
    for req in RUNTIME:
        assert req.name.lower() in runtime, f"{req.name} missing from requirements-runtime.txt"
    for tool in DEV_ONLY_TOOLS:
        assert tool not in runtime, f"{tool} is a developer tool: not for Binder"


def test_ranges_are_wide_and_floors_are_installable_pairs():
    floors = dict(line.split("==") for line in deps.floor_constraints())
    assert [r.name for r in RUNTIME] == list(floors), "one floor per runtime dependency"
    for req in RUNTIME:
        assert req.specifier.contains(floors[req.name]), req
    torch = Version(floors["torch"])
    assert torch <= Version("2.6"), "the course supports torch 2.6 and later"
    assert floors["torchvision"] == TORCHVISION_FOR[f"{torch.major}.{torch.minor}"]
    # Google Colab's preinstalled versions are inside the ranges (the Colab cell
    # installs with --no-deps and must not replace them)
    ranges = {r.name: r.specifier for r in RUNTIME}
    for name, colab in (("ipython", "7.34.0"), ("ipywidgets", "7.7.1"), ("numpy", "2.0.2")):
        assert ranges[name].contains(colab), (name, colab)


def test_d2l_is_installed_without_deps_and_not_pinned_in_requirements():
    assert deps.install_without_deps() == [environment.D2L_REQUIREMENT] == ["d2l==1.0.3"]
    assert "d2l" not in pinned(), "d2l in requirements.txt would pull numpy 1.23.5"
    for name in (
        "numpy",
        "matplotlib",
        "pandas",
        "scipy",
        "requests",
        "pillow",
        "ipython",
        "matplotlib-inline",
        "torchvision",
    ):
        assert name in pinned(), name
        assert name in {r.name for r in RUNTIME}, f"d2l imports {name}: a runtime dependency"


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-runtime.txt"])
def test_lock_header_says_how_to_regenerate(name):
    head = (ROOT / name).read_text().splitlines()[:2]
    assert head == [
        "# This file was autogenerated by uv via the following command:",
        "#    make lock",
    ]


def test_environment_yml_is_python_pip_the_runtime_pins_and_the_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps_ = env["dependencies"]
    assert deps_ == [
        "python=3.11",
        "pip",
        {"pip": ["-r requirements-runtime.txt", "-e ."]},
    ], deps_
    python = deps_[0].split("=")[1]
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(python + ".0")


def test_postbuild_and_make_setup_install_d2l_without_deps():
    post = (ROOT / "postBuild").read_text()
    make = (ROOT / "Makefile").read_text()
    assert (ROOT / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
    assert "pip install --no-deps $(python tools/deps.py no-deps)" in post
    assert "requirements.txt" not in post.replace("requirements-runtime.txt", "")
    assert "pip install -r requirements.txt" in make
    assert "pip install --no-deps $$($(PY) tools/deps.py no-deps)" in make
    assert "pip install --no-deps -e ." in make


def test_make_lab_runs_as_root_on_localhost():
    out = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "lab"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--ServerApp.ip=127.0.0.1" in out
    assert ("--allow-root" in out) == (os.getuid() == 0)


@pytest.mark.parametrize("bad", [(3, 10), (3, 14), (2, 7)])
def test_python_advice_is_one_line_naming_the_versions_and_the_command(bad):
    alone = deps.python_advice(bad, [])
    found = deps.python_advice(bad, ["python3.12", "python3.13"])
    for advice in (alone, found):
        assert "\n" not in advice and "Python 3.11, 3.12 or 3.13" in advice
    assert alone.endswith("make setup PYTHON=python3.13")
    assert found.endswith("make setup PYTHON=python3.12")


def test_python_check_agrees_with_requires_python():
    spec = SpecifierSet(PYPROJECT["project"]["requires-python"])
    for minor in range(8, 16):
        ok = deps.python_advice((3, minor), []) is None
        assert ok == spec.contains(f"3.{minor}.0"), minor


def test_make_setup_stops_at_once_on_an_unsupported_python(tmp_path):
    old = next(iter(PYENV.glob("3.10*/bin/python3.10")), None) or shutil.which("python3.10")
    if old is None:
        pytest.skip("no Python 3.10 on this machine")
    result = subprocess.run(
        ["make", "setup", f"PYTHON={old}", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "the course needs Python 3.11, 3.12 or 3.13" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_environment_check_reads_the_installed_package_metadata():
    ranges = environment.supported_ranges()
    for req in RUNTIME:
        assert ranges[req.name.lower()] == req.specifier, (
            f"{req.name}: the installed metadata is stale: run make setup"
        )
    checks = environment.check_environment()
    assert [c.name for c in checks] == ["Python", *environment.CHECKED]
    failed = [str(c) for c in checks if not c.ok]
    assert not failed, failed
    line = str(checks[1])
    assert line.startswith("OK    torch        version ") and "(supported >=2.6, <3)" in line


def test_on_colab_jupyterlab_is_not_checked(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    names = [c.name for c in environment.check_environment()]
    assert "jupyterlab" not in names and "torch" in names


def test_a_missing_package_fails_with_its_range(monkeypatch):
    real = environment.version

    def fake_version(name):
        if name == "d2l":
            raise environment.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(environment, "version", fake_version)
    (d2l,) = [c for c in environment.check_environment() if c.name == "d2l"]
    assert not d2l.ok and str(d2l).startswith("FAIL  d2l          not installed")
    assert "(supported ==1.0.3)" in str(d2l)


@pytest.mark.skipif(
    shutil.which("jupyter-repo2docker") is None
    and not (Path(sys.executable).parent / "jupyter-repo2docker").exists(),
    reason="jupyter-repo2docker is not installed (make setup installs it)",
)
def test_repo2docker_build_uses_environment_yml_and_postbuild(tmp_path):
    exe = Path(sys.executable).parent / "jupyter-repo2docker"
    result = subprocess.run(
        [str(exe if exe.exists() else "jupyter-repo2docker"), "--no-build", "--debug", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dockerfile = result.stdout + result.stderr
    assert "Building conda environment for python=3.11" in dockerfile
    assert 'env update -p ${NB_PYTHON_PREFIX} --file "environment.yml"' in dockerfile
    assert "RUN ./postBuild" in dockerfile
    assert "requirements.txt" not in dockerfile, "Binder must install the runtime set only"
