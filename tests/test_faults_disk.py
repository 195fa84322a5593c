"""Disk faults: an unwritable run directory fails at startup (before any model loads); a disk that
fills up during a checkpoint write fails with CheckpointError naming the checkpoint, and the
previous checkpoint stays intact.

The full disk is real: a small tmpfs (when this process may mount one, i.e. as root), and in any
case a per-process file-size limit (RLIMIT_FSIZE: the kernel refuses the write with EFBIG), set
in this process around the run and restored afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

import faultkit as fk
from empg import checkpoint as ckpt
from empg.cli import train_main

SENTINEL = "empg: loading model"


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("disk")
    return fk.make_digit_model(root / "model"), fk.write_sums(root / "sums.jsonl")


@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip() or 'mount failed'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def _file_size_limit(limit: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


def _digest(path: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(path.iterdir()))).hexdigest()


def _config(kit: tuple[Path, Path], tmp_path: Path, run: Path) -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(fk.config_text(kit[0], kit[1], run, train__lr=0.003))
    return cfg


def _unwritable_ro_mount(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:  # permissions bind an ordinary user
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o555)
        yield d / "run"
        d.chmod(0o755)
    else:  # root ignores permission bits: a read-only file system stops it
        with _tmpfs(tmp_path / "ro", "ro,size=1m") as d:
            yield d / "run"


@pytest.mark.parametrize("kind", ["parent is a file", "read-only directory"])
def test_unwritable_run_dir_fails_at_startup(kit, tmp_path, capsys, kind):
    if kind == "parent is a file":
        (tmp_path / "afile").write_text("x")
        runs: Iterator[Path] = iter([tmp_path / "afile" / "run"])
    else:
        runs = _unwritable_ro_mount(tmp_path)
    for run in runs:
        assert train_main([str(_config(kit, tmp_path, run))]) == 2
        out, err = capsys.readouterr()
        assert f"error (ConfigError): config key 'log.run_dir': the run directory {str(run)!r} is " \
               "not writable (" in err, err
        assert SENTINEL not in out


def _fill_during_second_save(kit, tmp_path: Path, run: Path, capsys, fault: contextlib.AbstractContextManager
                             ) -> str:
    cfg = _config(kit, tmp_path, run)
    assert train_main([str(cfg), "train.iterations=1"]) == 0
    good = run / "checkpoints" / "iter-000001"
    before = _digest(good)
    capsys.readouterr()
    with fault:
        rc = train_main([str(cfg), "--resume", "train.iterations=2"])
    out, err = capsys.readouterr()
    assert rc == 2, out + err
    assert f"error (CheckpointError): cannot write checkpoint {run / 'checkpoints' / 'iter-000002'} (" \
        in err, err
    assert "the earlier checkpoints are untouched" in err
    assert ckpt.latest_complete(run / "checkpoints") == good
    assert _digest(good) == before
    assert not list((run / "checkpoints").glob(".tmp-*")), "the half-written checkpoint is removed"
    return err


def test_disk_full_during_checkpoint_write_on_a_small_tmpfs(kit, tmp_path, capsys):
    # One checkpoint of the tiny policy is ~22 MB: the first fits, the second does not.
    with _tmpfs(tmp_path / "small", "size=36m") as disk:
        err = _fill_during_second_save(kit, tmp_path, disk / "run", capsys, contextlib.nullcontext())
        assert "No space left on device" in err and "MiB free on that disk" in err, err


def test_file_size_limit_during_checkpoint_write(kit, tmp_path, capsys):
    # The training state (~12 MB: AdamW moments) is the largest file of a checkpoint.
    err = _fill_during_second_save(kit, tmp_path, tmp_path / "run", capsys, _file_size_limit(8 << 20))
    assert "File too large" in err, err
