"""``shapelint fix -o OUT`` never writes, unlinks or truncates a file its input reads.

Each way ``-o`` can name an input file (the model itself, its external
data, the sidecar ``OUT.data`` the copy would bring, through symlinks and
hard links) is refused with one line on stderr and exit 2, and every input
file keeps its bytes.  Writes are atomic: a failure in the middle (a full
device) leaves the old copy whole and no temp file behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from shapelint import plugins
from shapelint import verify as V
from shapelint.cli import main
from shapelint.fix import FixError, fix_model, render_fix_text

from .conftest import loader_with
from .test_fix import LiteralBatch
from .test_verify import baked_model


@pytest.fixture
def with_rule(rules):
    return [*rules, LiteralBatch]


@pytest.fixture
def cli_rule(monkeypatch):
    """The CLI's rules plus TST501 (an edit on the baked Reshape), as tests/test_fix.py does."""
    monkeypatch.setattr(plugins, "load_rules", loader_with("TST501", LiteralBatch))


def external_model(folder: Path, name: str = "model.onnx", data: str = "w.bin") -> Path:
    """The baked model with every initializer in ``data`` next to it."""
    path = folder / name
    onnx.save(baked_model(), str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data,
              size_threshold=0)
    return path


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.is_file() and not p.is_symlink()}


def assert_refused(src: Path, out: str, with_rule, words: str = "never overwrites its input"):
    before = digests(src.parent)
    with pytest.raises(FixError, match=words):
        fix_model(str(src), out, rules=with_rule)
    assert digests(src.parent) == before, "an input file changed"
    V.prepare(src)  # the input still loads, weights and all (onnx.load refuses hard-linked data files)


def test_out_is_the_inputs_weights(tmp_path, with_rule):
    src = external_model(tmp_path)
    assert_refused(src, str(tmp_path / "w.bin"), with_rule)


def test_out_is_a_symlink_to_the_inputs_weights(tmp_path, with_rule):
    src = external_model(tmp_path)
    (tmp_path / "link.onnx").symlink_to("w.bin")
    assert_refused(src, str(tmp_path / "link.onnx"), with_rule)


def test_out_is_a_hard_link_of_the_inputs_weights_or_model(tmp_path, with_rule):
    src = external_model(tmp_path)
    os.link(tmp_path / "w.bin", tmp_path / "hard.onnx")
    assert_refused(src, str(tmp_path / "hard.onnx"), with_rule)
    os.link(src, tmp_path / "hard2.onnx")
    assert_refused(src, str(tmp_path / "hard2.onnx"), with_rule)


def test_out_whose_sidecar_is_the_inputs_weights(tmp_path, with_rule):
    # the reproducer: input weights in fixed.onnx.data, -o fixed.onnx would rewrite them
    src = external_model(tmp_path, data="fixed.onnx.data")
    assert_refused(src, str(tmp_path / "fixed.onnx"), with_rule, "external-data file 'fixed.onnx.data'")


def test_out_whose_sidecar_is_a_symlink_to_the_inputs_weights(tmp_path, with_rule):
    src = external_model(tmp_path)
    (tmp_path / "x.onnx.data").symlink_to("w.bin")
    assert_refused(src, str(tmp_path / "x.onnx"), with_rule)


def test_out_is_the_input_through_a_dotted_path_or_a_symlinked_folder(tmp_path, with_rule):
    src = external_model(tmp_path)
    assert_refused(src, str(tmp_path / "." / "model.onnx"), with_rule)
    (tmp_path / "alias").symlink_to(tmp_path, target_is_directory=True)
    assert_refused(src, str(tmp_path / "alias" / "w.bin"), with_rule)


def test_out_is_the_data_of_a_constant_in_a_function_body(tmp_path, with_rule):
    """Weights of any tensor count, not only initializers: here a Constant inside a model-local function."""
    from .test_reliability import function_constant_model

    m = function_constant_model("c.bin")
    (tmp_path / "c.bin").write_bytes(b"\0" * 64)
    src = tmp_path / "model.onnx"
    onnx.save(m, str(src))
    assert_refused(src, str(tmp_path / "c.bin"), with_rule)


def test_absent_weights_of_the_input_are_protected_too(tmp_path, with_rule):
    src = external_model(tmp_path, data="fixed.onnx.data")
    (tmp_path / "fixed.onnx.data").unlink()
    with pytest.raises(FixError, match="never overwrites its input"):
        fix_model(str(src), str(tmp_path / "fixed.onnx"), rules=with_rule)
    assert not (tmp_path / "fixed.onnx.data").exists() and not (tmp_path / "fixed.onnx").exists()


@pytest.mark.parametrize("how", ["weights", "symlink", "hardlink", "sidecar", "model"])
def test_cli_refusals_are_one_line_and_exit_2(tmp_path, cli_rule, how):
    src = external_model(tmp_path, data="fixed.onnx.data" if how == "sidecar" else "w.bin")
    out = {"weights": tmp_path / "w.bin", "symlink": tmp_path / "l.onnx", "hardlink": tmp_path / "h.onnx",
           "sidecar": tmp_path / "fixed.onnx", "model": src}[how]
    if how == "symlink":
        out.symlink_to("w.bin")
    if how == "hardlink":
        os.link(tmp_path / "w.bin", out)
    before = digests(tmp_path)
    res = CliRunner().invoke(main, ["fix", str(src), "-o", str(out)])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shapelint: error: ") and "never overwrites its input" in lines[0]
    assert "Traceback" not in res.output and res.stdout == ""
    assert digests(tmp_path) == before


def test_a_fixed_copy_with_external_data_is_written_next_to_it_and_the_input_is_untouched(tmp_path, with_rule):
    src = external_model(tmp_path)
    (tmp_path / "out").mkdir()
    before = digests(tmp_path)
    result = fix_model(str(src), str(tmp_path / "out" / "fixed.onnx"), rules=with_rule)
    assert result.exit_code == 0, render_fix_text(result)
    assert digests(tmp_path) == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fixed.onnx", "fixed.onnx.data"]
    onnx.load(str(tmp_path / "out" / "fixed.onnx"))


def test_rewriting_an_earlier_copy_replaces_it_whole(tmp_path, with_rule):
    src = external_model(tmp_path)
    out = tmp_path / "fixed.onnx"
    for _ in range(2):  # the second run replaces the first copy and its sidecar (no append, no stale bytes)
        result = fix_model(str(src), str(out), rules=with_rule)
        assert result.exit_code == 0, render_fix_text(result)
    onnx.checker.check_model(onnx.load(str(out)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixed.onnx", "fixed.onnx.data", "model.onnx", "w.bin"]


def test_rewriting_an_earlier_copy_from_its_own_folder_works(tmp_path, with_rule, monkeypatch):
    # onnx checks a sidecar's name against the working directory: `fix m.onnx -o fixed.onnx` run twice in the
    # model's folder found the first run's fixed.onnx.data and refused the save
    external_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        result = fix_model("model.onnx", "fixed.onnx", rules=with_rule)
        assert result.exit_code == 0, render_fix_text(result)
    onnx.checker.check_model(onnx.load("fixed.onnx"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixed.onnx", "fixed.onnx.data", "model.onnx", "w.bin"]


@pytest.mark.parametrize("external", [False, True])
def test_a_full_device_leaves_the_old_copy_whole_and_no_temp_file(tmp_path, with_rule, monkeypatch, external):
    src = external_model(tmp_path) if external else tmp_path / "baked.onnx"
    if not external:
        baked_model(src)
    out = tmp_path / "fixed.onnx"
    out.write_bytes(b"the old copy")
    import shapelint.safeio as safeio

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safeio.os, "fsync", full)
    names = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(FixError, match="cannot write .*No space left on device"):
        fix_model(str(src), str(out), rules=with_rule)
    assert out.read_bytes() == b"the old copy"
    assert sorted(p.name for p in tmp_path.iterdir()) == names, "a temp file was left behind"


def test_a_missing_output_folder_a_folder_or_a_device_is_one_line_and_exit_2(tmp_path, cli_rule):
    src = tmp_path / "baked.onnx"
    baked_model(src)
    # -o a folder: the copy would be FOLDER/baked.onnx, which is the input itself here
    for out, words in [(tmp_path / "nope" / "x.onnx", "does not exist"), (tmp_path, "never overwrites its input"),
                       (Path("/dev/null"), "not a regular file")]:
        res = CliRunner().invoke(main, ["fix", str(src), "-o", str(out)])
        assert res.exit_code == 2 and words in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.output
    assert Path("/dev/null").is_char_device()


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    from shapelint import safeio

    target = tmp_path / "report.json"
    target.write_text("old")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(safeio.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        safeio.atomic_write(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
