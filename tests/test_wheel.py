"""`maturin build` makes an abi3 wheel that installs on its own and imports, with its stub, its
py.typed marker and the console scripts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_builds_installs_and_imports(tmp_path):
    maturin = shutil.which("maturin") or str(Path(sys.executable).parent / "maturin")
    if not Path(maturin).exists():
        pytest.fail("maturin is not installed in this environment (it is in requirements-dev.txt)")
    out = tmp_path / "wheels"
    subprocess.run([maturin, "build", "--release", "-q", "-o", str(out)], cwd=REPO, check=True)
    (wheel,) = out.glob("empg-*-abi3-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "empg/py.typed" in names and "empg/_core.pyi" in names
    assert any(n.startswith("empg/_core") and n.endswith(".so") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "empg-train" in zipfile.ZipFile(wheel).read(entry_points).decode()

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)], check=True
    )
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import empg; "
        "assert empg.__file__.startswith(sys.argv[1]), empg.__file__; "
        "print(empg.group_weights([0.0, 1.0], group_size=2).weights.tolist())"
    )
    res = subprocess.run(
        [sys.executable, "-c", probe, str(target)], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    w = eval(res.stdout)
    assert w[0] < 0 < w[1]
