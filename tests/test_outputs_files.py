"""Output files as a user meets them: a path that cannot be written is refused before anything
starts (one line, exit 2), and what is written has the modes its content calls for (keys' secrets
0600, everything else 0644 under the usual umask)."""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.paths import check_writable
from pipeline_helpers import REPO, engine_cmd, free_port

SOURCE = "synthetic:A01?loops=1"


def refused_run(tmp_path: Path, *flags: str) -> tuple[subprocess.CompletedProcess, Path]:
    """`engine run` with output flags, in its own TMPDIR (where the supervisor would make its run folder)."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    done = subprocess.run(engine_cmd("run", "--source", SOURCE, "--publish", f"tcp://127.0.0.1:{free_port()}", *flags),
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(REPO)})
    return done, tmpdir


@pytest.mark.parametrize("flag, what, name", [("--labels-out", "labels", "x.jsonl"), ("--record", "video", "x.mp4"),
                                              ("--keypoints-out", "keypoints", "x.npz"), ("--summary", "summary", "run.json")])
def test_output_in_a_missing_folder_is_refused_before_any_stage_starts(tmp_path: Path, flag: str, what: str,
                                                                       name: str) -> None:
    done, tmpdir = refused_run(tmp_path, flag, f"missing_dir/{name}")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: {what} file missing_dir/{name}: folder missing_dir does not exist; create it with mkdir -p missing_dir "
        f"or choose another path with {flag}"], done.stderr
    # No stage was started: the supervisor never made its run folder, nothing was written anywhere.
    assert list(tmpdir.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmpdir"]


def test_output_under_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    done, tmpdir = refused_run(tmp_path, "--labels-out", "ok.jsonl", "--record", "a_file/out.mp4")
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: video file a_file/out.mp4: a_file is not a folder; "
                                        "choose a path in a folder with --record"]
    assert list(tmpdir.iterdir()) == [] and not (tmp_path / "ok.jsonl").exists()


def test_output_with_an_unknown_format_is_refused(tmp_path: Path) -> None:
    done, _ = refused_run(tmp_path, "--keypoints-out", "kp.csv")
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: keypoints file kp.csv: unknown format '.csv'; name it *.npz or *.jsonl "
                                        "with --keypoints-out"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0555 folder")
def test_output_in_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match=r"^labels file .*locked/x.jsonl: cannot write in folder .*locked "
                                              r"\(permission denied\); fix its permissions or choose another path "
                                              r"with --labels-out$"):
            check_writable(locked / "x.jsonl", "labels file", "--labels-out")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_writable_targets_pass_and_leave_nothing_behind(tmp_path: Path) -> None:
    assert check_writable(tmp_path / "x.jsonl", "labels file", "--labels-out") == tmp_path / "x.jsonl"
    assert check_writable("/dev/full", "labels file", "--labels-out") == Path("/dev/full")  # exists, written in place
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="is a folder: give a file name with --record"):
        check_writable(tmp_path, "video file", "--record")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_generate_makes_secrets_owner_only(tmp_path: Path) -> None:
    done = subprocess.run(engine_cmd("keys", "generate", str(tmp_path / "keys")), capture_output=True, text=True,
                          timeout=60, cwd=REPO, umask=0o022)
    assert done.returncode == 0, done.stderr
    files = {p.relative_to(tmp_path / "keys").as_posix(): mode(p) for p in (tmp_path / "keys").rglob("*") if p.is_file()}
    assert files == {"server.key": 0o644, "client.key": 0o644, "authorized/client.key": 0o644,
                     "server.key_secret": 0o600, "client.key_secret": 0o600}
    # Generating again (new keys over old ones) keeps the modes.
    subprocess.run(engine_cmd("keys", "generate", str(tmp_path / "keys")), capture_output=True, timeout=60, cwd=REPO,
                   umask=0o000, check=True)
    assert mode(tmp_path / "keys" / "server.key_secret") == 0o600 and mode(tmp_path / "keys" / "server.key") == 0o644


def test_keys_into_a_regular_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    done = subprocess.run(engine_cmd("keys", "generate", str(tmp_path / "a_file")), capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: key folder {tmp_path / 'a_file'}: cannot write keys there (not a directory): "
                                        "give `engine keys generate` a writable folder (or one it can create)"]


@pytest.mark.parametrize("keypoints", ["kp.npz", "kp.jsonl"])
def test_every_output_file_is_0644(window_model: Path, tmp_path: Path, keypoints: str) -> None:
    outputs = {"--record": "out.avi", "--labels-out": "labels.jsonl", "--keypoints-out": keypoints, "--summary": "run.json"}
    args = [part for flag, name in outputs.items() for part in (flag, str(tmp_path / name))]
    done = subprocess.run(engine_cmd("run", "--source", "synthetic:A01?loops=1&subjects=9", "--model", str(window_model),
                                     "--pose-workers", "1", "--quiet", "--publish", f"tcp://127.0.0.1:{free_port()}", *args),
                          capture_output=True, text=True, timeout=120, cwd=REPO, umask=0o022)
    assert done.returncode == 0, done.stderr
    written = {p.name: mode(p) for p in tmp_path.iterdir()}
    assert written == {name: 0o644 for name in outputs.values()}, written
    assert all((tmp_path / name).stat().st_size > 0 for name in outputs.values())
