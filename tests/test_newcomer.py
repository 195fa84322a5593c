"""The README's first command, run as a newcomer runs it: a fresh copy of the repository, a clean venv
built with only the README's install steps (never the dev requirements), then `empg-train` on the
embedded default, shortened by overrides. And the same for the built wheel alone.

The install line is read from README.md itself, so the README and this test cannot drift apart. pip's
cache and a cargo target directory under ~/.cache/empg are reused, so a second run takes minutes; the
model cache (HF_HOME) starts empty.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# One E-step of 2 prompts, 4 held-out problems greedy: enough to run every stage of the main job.
SHORT = ["train.iterations=1", "sampling.prompts_per_iteration=2", "sampling.group_size=4",
         "data.eval_limit=4", "eval.samples=0", "eval.pass_k=[1]"]
# A run that lasts longer than this has hung (the shortened default takes about a minute).
TIMEOUT_S = 1500


def readme_first_command() -> str:
    """The first ```bash block of the README's "Two commands" section."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 2, f"README.md 'Two commands' has {len(blocks)} bash blocks, expected 2"
    return blocks[0].strip()


def fresh_copy(dest: Path) -> Path:
    """The files a clone of this checkout would have (tracked, plus untracked ones git does not ignore)."""
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def newcomer_env(home_cache: Path) -> dict[str, str]:
    """The caller's environment without the dev venv: no VIRTUAL_ENV, no PYTHONPATH, its bin/ off PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    dev_bin = os.environ.get("VIRTUAL_ENV")
    if dev_bin:
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                      if not p.startswith(dev_bin))
    env["HF_HOME"] = str(home_cache)  # an empty model cache
    env["CARGO_TARGET_DIR"] = str(Path.home() / ".cache" / "empg" / "newcomer-target")
    return env


def run_readme_line(cmd: str, cwd: Path, env: dict[str, str], run_dir: Path) -> subprocess.CompletedProcess[str]:
    assert cmd.rstrip().endswith("empg-train"), f"the README's first command should end in empg-train: {cmd!r}"
    cmd = f"{cmd} {' '.join(SHORT)} log.run_dir={run_dir}"
    return subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)


def check_run(res: subprocess.CompletedProcess[str], venv: Path, run_dir: Path, env: dict[str, str]) -> None:
    assert res.returncode == 0, f"exit {res.returncode}\n--- stdout\n{res.stdout[-4000:]}\n--- stderr\n{res.stderr[-4000:]}"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert any(r.get("iteration") == 1 for r in rows), rows
    (ckpt,) = sorted((run_dir / "checkpoints").glob("iter-*"))
    probe = ("import sys, transformers; m = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1]); "
             "print(sum(p.numel() for p in m.parameters()))")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe, str(ckpt)], env=env,
                         capture_output=True, text=True, check=True)
    assert int(out.stdout.split()[-1]) > 100_000_000  # SmolLM2-135M, loaded by plain transformers


@pytest.fixture
def newcomer_dir(tmp_path):
    """A folder for one newcomer's copy, venv and run, removed when the test ends: each venv holds a
    multi-GB torch, and two of them kept until the session ends can fill a small CI disk."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.slow
def test_readme_first_command_in_a_clean_venv(newcomer_dir):
    tmp_path = newcomer_dir
    cmd = readme_first_command()
    assert "requirements-dev" not in cmd and "pip install ." in cmd
    repo = fresh_copy(tmp_path / "clone")
    env = newcomer_env(tmp_path / "hf-home")
    res = run_readme_line(cmd, repo, env, tmp_path / "run")
    check_run(res, repo / ".venv", tmp_path / "run", env)


@pytest.mark.slow
def test_built_wheel_alone_in_a_clean_venv(newcomer_dir):
    """`pip install dist/empg-*.whl` (and the README's model step) resolves everything empg-train needs."""
    tmp_path = newcomer_dir
    cmd = readme_first_command()
    repo = fresh_copy(tmp_path / "clone")
    env = newcomer_env(tmp_path / "hf-home")
    build = subprocess.run(["bash", "-c", "python3 -m venv .build && .build/bin/pip install -q maturin && "
                            ".build/bin/maturin build --release -q -o dist"], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=TIMEOUT_S)
    assert build.returncode == 0, build.stderr[-4000:]
    (wheel,) = (repo / "dist").glob("empg-*.whl")
    wheel_cmd = cmd.replace("pip install .", f"pip install {wheel}", 1)
    assert wheel_cmd != cmd
    res = run_readme_line(wheel_cmd, tmp_path, env, tmp_path / "run")
    check_run(res, tmp_path / ".venv", tmp_path / "run", env)
