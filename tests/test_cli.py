"""The ``divlab`` command line, called in-process: list, presets, fit (every preset, every export
format), compare, help, and bad input (one line on stderr, exit 2, nothing written)."""

from __future__ import annotations

import csv
import json
import os
import stat

import pytest
from PIL import Image

from divlab.cli import main
from divlab.export import FORMATS
from divlab.scenario import MAX_BYTES, presets

PRESET_IDS = [p["id"] for p in presets()]


def _check_output(path, fmt, n_divergences, steps=20, names=("loc", "scale")):
    assert path.exists() and path.stat().st_size > 0
    if fmt == "html":
        text = path.read_text(encoding="utf-8")
        assert "plotly" in text and '<script src="http' not in text
        assert "Plotly.newPlot" in text and "Plotly.addFrames" in text  # the animated figure itself
    elif fmt == "gif":
        with Image.open(path) as im:
            assert im.format == "GIF" and im.n_frames > 1
    elif fmt == "png":
        with Image.open(path) as im:
            im.load()
            assert im.format == "PNG" and im.size[0] > 100
            assert len(im.convert("RGB").getcolors(1 << 20)) > 20  # a drawing, not a blank page
    elif fmt == "csv":
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert rows and list(rows[0]) == ["step", "divergence", "label", *names, "loss"]
        assert len({r["label"] for r in rows}) == n_divergences
        assert rows[0]["step"] == "0" and "nan" not in {r["loss"] for r in rows}
    elif fmt == "json":
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["scenario"]["optimizer"]["steps"] == steps
        assert len(data["results"]) == n_divergences
        if names:
            assert all(len(r["losses"]) == len(r["trajectory"][names[0]]) for r in data["results"])
        else:  # a categorical student: its probabilities, and a probability frame per recorded step
            assert all(abs(sum(r["probs"]) - 1) < 1e-9 for r in data["results"])
            assert all(len(r["trajectory"]["probs"]) == len(r["trajectory"]["step"]) for r in data["results"])
    else:  # pragma: no cover
        raise AssertionError(fmt)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600


TINY = 2  # optimizer steps in the every-preset tests: enough for an animation, fast on 2 cores


@pytest.mark.parametrize("i, preset", list(enumerate(PRESET_IDS)), ids=PRESET_IDS)
def test_every_preset_runs_through_the_cli_and_writes_every_format(i, preset, tmp_path, capsys, monkeypatch):
    """Each lesson (1D and 2D) loads, validates and runs through `divlab fit` with reduced steps
    (one format per lesson, in turn); the same reduced run then writes every other format. The
    fit runs once: run_scenario is memoized on the scenario's JSON for this test."""
    import divlab.scenario as scenario_mod
    from divlab import export
    from divlab.scenario import init_names, load_preset

    memo, real = {}, scenario_mod.run_scenario

    def run_scenario(sc, callback=None):
        key = sc.to_json()
        if key not in memo:
            memo[key] = real(sc, callback=callback)
        return memo[key]

    monkeypatch.setattr(scenario_mod, "run_scenario", run_scenario)

    fmt = FORMATS[i % len(FORMATS)]
    out = tmp_path / f"run.{fmt}"
    assert main(["fit", "--preset", preset, "--steps", str(TINY), "--out", str(out), "--quiet"]) == 0
    cap = capsys.readouterr()
    assert cap.err == ""
    sc = load_preset(preset)["scenario"]
    n = len(sc.divergences)
    names = init_names(sc.model.family, sc.dim, sc.model.components)
    _check_output(out, fmt, n, TINY, names)
    assert "nan" not in cap.out.lower().replace("nats", "")
    small = sc.with_overrides(steps=TINY)
    results = run_scenario(small)
    assert len(memo) == 1  # the CLI and the exports used the same run
    target = small.build_target()
    for other in FORMATS:
        if other != fmt:
            path = export.write(tmp_path / f"all.{other}", small, target, results)
            _check_output(path, other, n, TINY, names)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_export_format(fmt, tmp_path, capsys):
    out = tmp_path / f"fit.{fmt}"
    assert main(["fit", "--preset", "two_equal_modes", "--divergence", "kl,reverse_kl", "--steps", "20",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "KL(p‖q), forward" in text and "KL(q‖p), reverse" in text and f"wrote {out}" in text
    _check_output(out, fmt, 2)


def test_2d_fit_prints_the_family_parameters_and_the_closed_form(tmp_path, capsys):
    out = tmp_path / "banana.png"
    assert main(["fit", "--preset", "banana_2d", "--steps", "30", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "q (model)  = 2D Normal (full covariance), start loc_x=1 loc_y=1 scale_x=0.7 scale_y=0.7 corr=0" in text
    header = next(line for line in text.splitlines() if line.startswith("divergence"))
    assert header.split()[:8] == ["divergence", "direction", "loc_x", "loc_y", "scale_x", "scale_y", "corr", "D"]
    # banana vs a 2D Normal has no closed form: the fit's own quadrature value is printed, labelled so
    assert "quadrature (fit)" in text and f"wrote {out}" in text
    _check_output(out, "png", 2)


def test_sample_divergence_override_switches_the_estimator_to_auto(tmp_path, capsys):
    out = tmp_path / "fit.csv"
    assert main(["fit", "--preset", "ring_2d", "--divergence", "kl,mmd", "--steps", "3", "--out", str(out),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    rows = {line.split()[0]: line for line in text.splitlines()[2:] if line.strip()}
    assert "quadrature (fit)" in rows["KL(p‖q),"] and "samples (fit)" in rows["MMD²"]
    _check_output(out, "csv", 2, 3, ("loc_x", "loc_y", "scale_x", "scale_y", "corr"))


def test_infinity_is_printed_with_its_reason(capsys):
    assert main(["fit", "--preset", "disjoint_supports", "--divergence", "js,reverse_kl", "--steps", "20",
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "∞" in text and "the model q puts mass where the target p has none" in text
    assert "nan" not in text.lower().replace("nats", "")


def test_scenario_file_and_progress(tmp_path, capsys):
    sc = next(p for p in presets() if p["id"] == "heavy_tails")["scenario"]
    f = tmp_path / "sc.json"
    f.write_text(sc.to_json(), encoding="utf-8")
    assert main(["fit", "--scenario", str(f), "--divergence", "hellinger", "--steps", "20"]) == 0
    cap = capsys.readouterr()
    assert "Hellinger² (squared)" in cap.out and ("converged" in cap.out or "max_steps" in cap.out)
    assert "Traceback" not in cap.err


def test_progress_bar_goes_to_stderr():
    import io

    from divlab.cli import _Progress

    err = io.StringIO()
    bar = _Progress(10, err, delay=0.0)
    for k in range(10):
        bar(0, k, {"loc": 0.0, "scale": 1.0}, 1.0)
    bar.close()
    assert "fitting [" in err.getvalue() and "100%" in err.getvalue() and err.getvalue().endswith("\n")
    quiet = io.StringIO()
    bar = _Progress(10, quiet, delay=0.0, enabled=False)
    bar(0, 0, {}, 1.0)
    bar.close()
    assert quiet.getvalue() == ""


def test_list_and_presets(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["key", "name", "family", "behaviour"]
    assert any(line.startswith("reverse_kl ") and "mode-seeking" in line for line in lines)
    # aligned: the 'family' column starts at the same offset on every row
    col = lines[0].index("family")
    assert all(line[col - 2:col] == "  " for line in lines[2:] if line.strip() and not line.startswith("p is"))
    assert main(["presets"]) == 0
    text = capsys.readouterr().out
    assert all(pid in text for pid in PRESET_IDS)


def test_compare(tmp_path, capsys):
    p, q = tmp_path / "p.json", tmp_path / "q.json"
    p.write_text(json.dumps({"type": "normal", "loc": 0.0, "scale": 1.0}))
    q.write_text(json.dumps({"type": "normal", "loc": 1.0, "scale": 2.0}))
    assert main(["compare", str(p), str(q), "--only", "kl,reverse_kl,js,hellinger,mmd,wasserstein"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[3:] if line.strip()}
    assert set(rows) == {"kl", "reverse_kl", "js", "hellinger", "mmd", "wasserstein"}
    # KL(N(0,1)‖N(1,4)) = log 2 + (1 + 1)/8 − 1/2
    assert "0.443147" in rows["kl"] and "quadrature" in rows["kl"]
    assert rows["kl"].rstrip().endswith("0.443147")  # the closed form column agrees
    assert rows["js"].rstrip().endswith("-")  # no closed form
    # sample-based divergences with a registered Gaussian closed form report it
    assert "closed_form" in rows["mmd"]
    assert "1.41421" in rows["wasserstein"]  # Bures: W2(N(0,1), N(1,4)) = sqrt(1 + (2 - 1)^2)


def _columns(lines, header_start):
    """Rows of a CLI table as dicts, the columns cut where the dashes under the header are."""
    import re

    i = next(k for k, line in enumerate(lines) if line.startswith(header_start))
    spans = [m.span() for m in re.finditer(r"-+", lines[i + 1])]
    spans[-1] = (spans[-1][0], None)
    names = [lines[i][a:b].strip() for a, b in spans]
    rows = []
    for line in lines[i + 2:]:
        if not line.strip() or line.startswith(" "):
            break
        rows.append({n: line[a:b].strip() for n, (a, b) in zip(names, spans)})
    return rows


def test_units_come_from_the_registry(tmp_path, capsys):
    """list, compare and fit label each value with its divergence's unit: nats for KL, no nats
    for TV and H² (pure numbers), a squared length for Sinkhorn (issue 6)."""
    from divlab.divergences import get, keys

    assert main(["list"]) == 0
    rows = {r["key"]: r for r in _columns(capsys.readouterr().out.splitlines(), "key")}
    assert set(rows) == set(keys()) and all(r["unit"] == get(k).unit for k, r in rows.items())
    assert rows["kl"]["unit"] == "nats" and rows["tv"]["unit"] == rows["hellinger"]["unit"] == "dimensionless"
    assert rows["sinkhorn"]["unit"] == "squared units of x"

    p, q = tmp_path / "p.json", tmp_path / "q.json"
    p.write_text(json.dumps({"type": "normal", "loc": 0.0, "scale": 1.0}))
    q.write_text(json.dumps({"type": "normal", "loc": 1.0, "scale": 2.0}))
    assert main(["compare", str(p), str(q), "--only", "kl,tv,hellinger,pearson,wasserstein"]) == 0
    text = capsys.readouterr().out
    assert "values in nats" not in text
    rows = {r["key"]: r for r in _columns(text.splitlines(), "key")}
    assert rows["kl"]["unit"] == "nats" and rows["wasserstein"]["unit"] == "units of x"
    for key in ("tv", "hellinger", "pearson"):
        assert "nats" not in " ".join(rows[key].values()) and rows[key]["unit"] == "dimensionless", rows[key]

    assert main(["fit", "--preset", "two_equal_modes", "--divergence", "kl,tv,hellinger", "--steps", "5",
                 "--quiet"]) == 0
    rows = {r["divergence"]: r for r in _columns(capsys.readouterr().out.splitlines(), "divergence")}
    assert all("[nats]" not in name for r in rows.values() for name in r)  # no header claims one unit for all
    assert rows["KL(p‖q), forward"]["unit"] == "nats"
    for name in ("Total variation", "Hellinger² (squared)"):
        assert "nats" not in " ".join(rows[name].values()) and rows[name]["unit"] == "dimensionless"


def test_compare_all_density_divergences_with_disjoint_supports(tmp_path, capsys):
    p, q = tmp_path / "p.json", tmp_path / "q.json"
    p.write_text(json.dumps({"type": "uniform", "low": 0.0, "high": 1.0}))
    q.write_text(json.dumps({"type": "uniform", "low": 2.0, "high": 3.0}))
    only = "kl,reverse_kl,jeffreys,js,hellinger,tv,pearson,neyman,alpha,skew_kl,tsallis,renyi,bhattacharyya,cauchy_schwarz"
    assert main(["compare", str(p), str(q), "--only", only]) == 0
    text = capsys.readouterr().out
    rows = {line.split()[0]: line for line in text.splitlines()[3:] if line.strip() and not line.startswith(" ")}
    assert "∞" in rows["kl"] and "∞" not in rows["js"] and "∞" not in rows["tv"]
    assert "kl: ∞ because" in text
    assert "nan" not in text.lower().replace("nats", "")


@pytest.mark.parametrize("argv", [[], ["--help"], ["list", "--help"], ["presets", "--help"], ["fit", "--help"],
                                  ["compare", "--help"]], ids=lambda a: " ".join(a) or "no-args")
def test_help(argv, capsys):
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "usage: divlab" in text
    if argv and argv[-1] == "--help":
        assert "example" in text


# ----------------------------------------------------------------------------------------------
# bad input: one line, exit 2, nothing written
# ----------------------------------------------------------------------------------------------

def _scenario_text():
    return next(p for p in presets() if p["id"] == "two_equal_modes")["scenario"].to_json()


def _bad_files():
    good = json.loads(_scenario_text())
    bad_lr = json.loads(_scenario_text())
    bad_lr["optimizer"]["lr"] = 20.0
    bad_scale = json.loads(_scenario_text())
    bad_scale["target"]["components"][1]["scale"] = -1.0
    return {
        "malformed": ("{ this is not json", "malformed JSON at line 1"),
        "truncated": (_scenario_text()[:200], "malformed JSON"),
        "empty": ("", "empty"),
        "oversized": ('{"title": "' + "a" * (MAX_BYTES + 10) + '"}', "too large"),
        "nested": ("[" * 1000 + "]" * 1000, "nested deeper than 20 levels"),
        "not-object": ("[1, 2, 3]", "expected a JSON object"),
        "lr": (json.dumps(bad_lr), "scenario.optimizer.lr: Input should be less than or equal to 10"),
        "scale": (json.dumps(bad_scale), "scenario.target.components[1].scale"),
        "unknown-field": (json.dumps({**good, "colour": "red"}), "scenario.colour: unknown field"),
        "binary": (b"\xff\xfe\x00garbage", "not UTF-8"),
    }


BAD_FILES = _bad_files()


def _assert_clean_failure(code, capsys, tmp_path, expected, out_name):
    cap = capsys.readouterr()
    assert code == 2
    assert cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1, cap.err
    assert lines[0].startswith("divlab: error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in cap.err
    assert not (tmp_path / out_name).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") or p.name.startswith(out_name)]


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_scenario_files(case, tmp_path, capsys):
    content, expected = BAD_FILES[case]
    f = tmp_path / "bad.json"
    (f.write_bytes if isinstance(content, bytes) else f.write_text)(content)
    code = main(["fit", "--scenario", str(f), "--steps", "20", "--out", str(tmp_path / "out.html")])
    _assert_clean_failure(code, capsys, tmp_path, expected, "out.html")


@pytest.mark.parametrize("extra, expected", [
    pytest.param(["--preset", "two_equal_modes", "--divergence", "kl,foo"], "scenario.divergences[1].key: 'foo'",
                 id="unknown-divergence"),
    pytest.param(["--preset", "two_equal_modes", "--divergence", "kl,,js"], "comma-separated", id="empty-key"),
    pytest.param(["--preset", "two_equal_modes", "--steps", "0"], "scenario.optimizer.steps", id="steps-zero"),
    pytest.param(["--preset", "two_equal_modes", "--steps", "6000"], "scenario.optimizer.steps", id="steps-high"),
    pytest.param(["--preset", "two_equal_modes", "--steps", "ten"], "invalid int value", id="steps-text"),
    pytest.param(["--preset", "nope"], "preset 'nope' is unknown", id="unknown-preset"),
    pytest.param(["--preset", "banana_2d", "--divergence", "kl,ksd"], "scenario.divergences[1].key: 'ksd' is not",
                 id="2d-unfittable"),
    pytest.param(["--preset", "three_blobs_sinkhorn_mmd", "--steps", "0"], "scenario.optimizer.steps", id="2d-steps"),
    pytest.param(["--scenario", "/nonexistent/sc.json"], "no such file", id="missing-file"),
    pytest.param([], "one of the arguments --preset --scenario is required", id="no-source"),
    pytest.param(["--preset", "two_equal_modes", "--scenario", "x.json"], "not allowed with", id="both-sources"),
])
def test_bad_fit_arguments(extra, expected, tmp_path, capsys):
    code = main(["fit", *extra, "--out", str(tmp_path / "out.png")])
    _assert_clean_failure(code, capsys, tmp_path, expected, "out.png")


def test_bad_output_paths(tmp_path, capsys):
    code = main(["fit", "--preset", "two_equal_modes", "--steps", "20", "--out", str(tmp_path / "out.txt")])
    _assert_clean_failure(code, capsys, tmp_path, "the extension must be one of .html, .gif", "out.txt")
    code = main(["fit", "--preset", "two_equal_modes", "--steps", "20", "--out", str(tmp_path / "no" / "out.gif")])
    _assert_clean_failure(code, capsys, tmp_path, "does not exist", "no")


@pytest.mark.parametrize("argv, expected", [
    pytest.param(["bogus"], "invalid choice: 'bogus'", id="unknown-command"),
    pytest.param(["compare", "/nonexistent/p.json", "/nonexistent/q.json"], "no such file", id="compare-missing"),
    pytest.param(["compare", "P", "Q", "--only", "kl,foo"], "divergence='foo' is unknown", id="compare-unknown"),
    pytest.param(["compare", "P", "Q", "--samples", "1"], "--samples 1", id="compare-samples"),
    pytest.param(["compare", "P", "BAD"], "BAD.scale: Normal(scale=-1.0): scale must be > 0", id="compare-bad-spec"),
    pytest.param(["compare", "P", "NESTED"], "nested deeper than 20 levels", id="compare-nested"),
    pytest.param(["compare", "P", "2D"], "is 1D and", id="compare-dims"),
    pytest.param(["list", "--wat"], "unrecognized arguments: --wat", id="list-extra"),
])
def test_bad_compare_and_commands(argv, expected, tmp_path, capsys):
    files = {"P": {"type": "normal", "loc": 0.0, "scale": 1.0}, "BAD": {"type": "normal", "loc": 0.0, "scale": -1.0},
             "2D": {"type": "mvn", "mean": [0.0, 0.0], "cov": [[1.0, 0.0], [0.0, 1.0]]}}
    for name, spec in files.items():
        (tmp_path / name).write_text(json.dumps(spec))
    (tmp_path / "NESTED").write_text("[" * 500 + "]" * 500)
    argv = [str(tmp_path / a) if a in files or a == "NESTED" else a for a in argv]
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(argv)
    cap = capsys.readouterr()
    assert code == 2 and cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("divlab: error: ") and expected in lines[0], cap.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
