"""Fuzzing the command line: random specs, flags and damaged files end in success or one line.

Every command gets hypothesis-generated arguments — forecaster specs with odd parameters,
out-of-range numbers, NaN, huge integers, garbage text — and damaged inputs: stores with a
broken manifest, truncated or missing segment files or NaN inside, non-NPZ and malformed NPZ
files, YAML configs of the wrong shape. Whatever comes in, the command must either succeed or
exit 2 with exactly one ``Error: ...`` line: never a traceback, never a hang (each call runs
under an alarm). ``train`` and ``record`` always get at least one bad value, so they must refuse
before any training starts.

The examples are bounded and derandomized (the same inputs on every run, so CI cannot flake);
run with ``--hypothesis-seed=N`` and without ``derandomize`` to explore further.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import traceback
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _models  # noqa: F401  (one intra-op thread for the tests)
import numpy as np
import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from forecastprune.cli import cli
from forecastprune.core.layout import ChannelLayout
from forecastprune.store import GammaTrajectoryStore
from forecastprune.testing import isolated_registry

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: seconds one command may take before the test calls it a hang
HANG_S = 60
LAYOUT = ChannelLayout((("a", 3), ("b", 3)))


# ------------------------------------------------------------------------------ checking
@contextlib.contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    def hang(*_: Any) -> None:
        raise TimeoutError(f"the command ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _scratch_dir() -> Iterator[None]:
    """Run inside an empty temporary working directory (click's isolated_filesystem is
    deprecated)."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            yield
        finally:
            os.chdir(previous)


def check(args: list[Any], *, must_fail: bool = False, may_exit_1: bool = False) -> Result:
    """Run the CLI and assert success or exit 2 with one ``Error:`` line and no traceback."""
    args = [str(a) for a in args]
    runner = CliRunner()
    # relative paths a config may name (json: 6) land in a scratch folder, not the checkout
    with isolated_registry(), _scratch_dir(), _alarm(HANG_S):
        result = runner.invoke(cli, args)
    shown = f"forecastprune {' '.join(a[:80] for a in args)}\n{result.output[-2000:]}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(result.exception))[-3000:]
        pytest.fail(f"traceback from {shown}\n{tb}")
    event(f"exit {result.exit_code}")  # --hypothesis-show-statistics shows the mix
    allowed = {2} if must_fail else {0, 2} | ({1} if may_exit_1 else set())
    assert result.exit_code in allowed, shown
    assert "Traceback" not in result.output, shown
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("Error")]
        assert len(errors) == 1 and lines[-1] == errors[0], shown
        assert errors[0].startswith("Error: ") and len(errors[0]) > len("Error: ") + 10, shown
    if result.exit_code == 1:
        assert "every requested forecaster failed" in result.stderr, shown
    return result


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A fresh folder per example (hypothesis reruns a test body many times)."""
    with tempfile.TemporaryDirectory(prefix="fp-fuzz-") as folder:
        yield Path(folder)


# ------------------------------------------------------------------------------ inputs
@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 snapshots × 6 channels in 3 segments, LR recorded, the run planned to step 300."""
    path = tmp_path_factory.mktemp("fuzz") / "tiny.fpstore"
    rng = np.random.default_rng(0)
    rates = rng.random(LAYOUT.total)
    with GammaTrajectoryStore.create(
        path, LAYOUT, metadata={"total_steps": 300}, flush_every=10
    ) as store:
        for i in range(30):
            store.append(
                10 * i,
                np.exp(-rates * i / 10) * (1 + 0.01 * rng.standard_normal(6)),
                lr=0.1 if i < 20 else 0.01,
            )
    return path


NUMBERS = st.one_of(
    st.integers(-5, 40),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0, 1, -1, 2**63, -(2**63) - 1, 10**30, 1e-300, 1e308]),
)
WORDS = st.one_of(
    st.sampled_from(
        ["lr", "step", "True", "None", "nan", "inf", "-", "'x'", '"y"', "mean", "9" * 5000]
    ),
    st.text(max_size=8),
)
PARAM_NAMES = st.sampled_from(
    [
        "window",
        "alpha",
        "span",
        "p",
        "d",
        "q",
        "trend",
        "backend",
        "time_axis",
        "damped",
        "refine",
        "clip_at_zero",
        "nope",
    ]
)
FORECASTER_NAMES = st.sampled_from(
    [
        "naive",
        "sma",
        "ema",
        "linear",
        "arima",
        "smaa",
        "sktime:NaiveForecaster",
        "sktime:Nope",
        "statsforecast:Naive",
        "x:y",
        "",
    ]
)


@st.composite
def specs(draw: st.DrawFn) -> str:
    """A forecaster spec: a working name, a name with random parameters, or random text."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.text(max_size=30))
    if kind <= 6:
        return draw(st.sampled_from(["naive", "sma", "ema", "linear(window=3)", "arima"]))
    name = draw(FORECASTER_NAMES)
    params = draw(st.dictionaries(PARAM_NAMES, st.one_of(NUMBERS, WORDS), max_size=3))
    if not params and draw(st.booleans()):
        return name
    return f"{name}({', '.join(f'{k}={v}' for k, v in params.items())})"


CUTOFFS = st.one_of(
    st.sampled_from(
        [
            "0.1",
            "0.5",
            "0.9",
            "1",
            "1.0",
            "0",
            "-0.2",
            "step:50",
            "step:-1",
            "step:",
            "step:1e3",
            "nan",
            "inf",
            "",
        ]
    ),
    st.text(max_size=6),
    NUMBERS.map(str),
)


def _maybe(
    flag: str, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any] | None = None
) -> st.SearchStrategy[list[Any]]:
    """The flag left out (half the time), with a sensible value (30 %) or a wild one (20 %).

    Mostly sensible values let examples get past the first check into the deeper paths.
    """

    def pick(k: int) -> st.SearchStrategy[list[Any]]:
        if k < 5:
            return st.just([])
        values = good if k < 8 or bad is None else bad
        return values.map(lambda v: [flag, v])

    return st.integers(0, 9).flatmap(pick)


GOOD_CUTOFFS = st.sampled_from(["0.1", "0.3", "0.5", "0.8", "step:100", "step:200"])


def _flags(*options: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[list[Any]]:
    return st.tuples(*options).map(lambda parts: [a for part in parts for a in part])


# ------------------------------------------------------------------------------ damage
def _damage_store(source: Path, folder: Path, how: int, data: st.DataObject) -> Path:
    """A copy of ``source`` damaged one way: manifest, segment files, NaN or stray files."""
    path = folder / "damaged.fpstore"
    shutil.copytree(source, path)
    segments = sorted(path.glob("seg-*.npy"))
    target = data.draw(st.sampled_from(segments))
    if how == 0:
        (path / "manifest.json").write_bytes(data.draw(st.binary(max_size=64)))
    elif how == 1:
        manifest = json.loads((path / "manifest.json").read_text())
        key = data.draw(st.sampled_from(sorted(manifest)))
        manifest[key] = data.draw(
            st.one_of(
                st.none(), NUMBERS, st.text(max_size=5), st.lists(st.integers(-3, 3), max_size=3)
            )
        )
        (path / "manifest.json").write_text(json.dumps(manifest, allow_nan=True))
    elif how == 2:
        raw = target.read_bytes()
        target.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1))])
    elif how == 3:
        target.unlink()
    elif how == 4:
        raw = bytearray(target.read_bytes())
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
        target.write_bytes(bytes(raw))
    else:
        values = sorted(path.glob("seg-*-values.npy"))
        array = np.load(data.draw(st.sampled_from(values)), mmap_mode="r+")
        array[
            data.draw(st.integers(0, array.shape[0] - 1)),
            data.draw(st.integers(0, array.shape[1] - 1)),
        ] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        array.flush()
    return path


@st.composite
def npz_files(draw: st.DrawFn) -> tuple[str, Any]:
    """``("bytes", b)``, ``("zip", members)`` or ``("arrays", dict)`` for a trajectory NPZ."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return "bytes", draw(st.binary(max_size=200))
    if kind == 1:
        members = draw(
            st.dictionaries(
                st.sampled_from(["steps.npy", "gammas.npy", "x", "a.b"]),
                st.binary(max_size=50),
                max_size=3,
            )
        )
        return "zip", members
    t = draw(st.integers(0, 4))
    c = draw(st.integers(0, 4))
    arrays: dict[str, Any] = {
        "steps": draw(
            st.sampled_from(
                [
                    np.arange(t) * 10,
                    np.arange(t)[::-1],
                    np.full(t, 3),
                    np.arange(t) - 5,
                    np.arange(t) + 0.5,
                    np.array(["a"] * t),
                    np.zeros((t, 2)),
                ]
            )
        ),
        "gammas": draw(
            st.sampled_from(
                [
                    np.ones((t, c)),
                    np.full((t, c), np.nan),
                    np.ones(c),
                    np.ones((t, c), dtype=bool),
                    np.array([["x"] * c] * t) if t and c else np.zeros((t, c), dtype=np.float16),
                ]
            )
        ),
        "layer_names": draw(
            st.sampled_from([np.array(["l"]), np.array(["l", "l"]), np.array([1, 2]), np.array([])])
        ),
        "layer_sizes": draw(
            st.sampled_from(
                [np.array([c]), np.array([c - 1, 1]), np.array([-c]), np.array([1.5]), np.array([])]
            )
        ),
    }
    for key in draw(st.sets(st.sampled_from(sorted(arrays)), max_size=2)):
        del arrays[key]
    if draw(st.booleans()):
        arrays["metadata"] = np.array(
            draw(st.sampled_from(["{}", "{not json", "[1, 2]", '{"total_steps": -4}', "null"]))
        )
    if draw(st.booleans()):
        arrays["lrs"] = draw(st.sampled_from([np.full(t, 0.1), np.full(t, np.inf), np.ones(1)]))
    return "arrays", arrays


def _write_npz(path: Path, made: tuple[str, Any]) -> Path:
    kind, payload = made
    if kind == "bytes":
        path.write_bytes(payload)
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in payload.items():
                archive.writestr(name, data)
    else:
        np.savez(path, **payload)
    return path


# ------------------------------------------------------------------------------ commands
@FUZZ
@given(
    pattern=st.one_of(st.none(), st.text(max_size=10)),
    plugin=st.sampled_from([None, "missing.py", "syntax", "raises", "empty-dir"]),
)
def test_list(pattern: str | None, plugin: str | None) -> None:
    with scratch() as folder:
        args: list[Any] = ["list"] + ([pattern] if pattern is not None else [])
        if plugin is not None:
            path = folder / f"{plugin}.py"
            if plugin == "syntax":
                path.write_text("def broken(:\n")
            elif plugin == "raises":
                path.write_text("raise RuntimeError('plugin exploded on import')\n")
            elif plugin == "empty-dir":
                path = folder / "plugins"
                path.mkdir()
            args += ["--plugins", path]
        check(args)


@pytest.mark.slow
@FUZZ
@given(
    spec=specs(),
    flags=_flags(
        _maybe("--cutoff", GOOD_CUTOFFS, CUTOFFS),
        _maybe("--at", st.integers(0, 300), NUMBERS),
        _maybe("--target", st.integers(300, 600), NUMBERS),
        _maybe("--time-axis", st.sampled_from(["step", "lr"]), st.just("days")),
        _maybe("--coverage", st.floats(0.05, 0.95), NUMBERS),
    ),
    out=st.sampled_from(["p.npz", "p.npz", "sub/p.npz", "."]),
)
@example(spec=f"sma(window={'9' * 5000})", flags=[], out="p.npz")  # Python's digit limit
@example(spec="sma", flags=["--target", 10**20, "--coverage", "nan"], out="p.npz")
@example(spec="sma", flags=[], out="sub/p.npz")  # a missing folder is created
def test_forecast(tiny_store: Path, spec: str, flags: list[Any], out: str) -> None:
    with scratch() as folder:
        check(
            ["forecast", "--store", tiny_store, "--forecaster", spec, "--out", folder / out, *flags]
        )


@pytest.mark.slow
@FUZZ
@given(
    forecasters=st.lists(specs(), min_size=1, max_size=3).map(",".join),
    cutoffs=st.lists(st.one_of(GOOD_CUTOFFS, GOOD_CUTOFFS, CUTOFFS), min_size=1, max_size=3).map(
        ",".join
    ),
    flags=_flags(
        _maybe("--ratio", st.floats(0, 1), NUMBERS),
        _maybe("--min-keep", st.integers(1, 4), NUMBERS),
        _maybe("--eps", st.floats(0, 0.5), NUMBERS),
        _maybe("--eb-spacing", st.integers(1, 100), NUMBERS),
        _maybe("--timeout", st.sampled_from([20, 0]), st.sampled_from([-1, 1e300])),
        _maybe("--policy", st.just("none"), st.sampled_from(["seed", "grouped", "x"])),
        _maybe("--group-reduce", st.just("max"), st.just("min")),
    ),
)
@example(forecasters="sma", cutoffs="0.2", flags=["--min-keep", 1000])  # the oracle prunes 0
@example(forecasters=",,,", cutoffs="1", flags=[])
@example(forecasters="sma", cutoffs="0.5", flags=["--timeout", 1e300])
def test_compare(tiny_store: Path, forecasters: str, cutoffs: str, flags: list[Any]) -> None:
    check(
        [
            "compare",
            "--store",
            tiny_store,
            "--forecasters",
            forecasters,
            "--cutoffs",
            cutoffs,
            *flags,
        ],
        may_exit_1=True,
    )


CONFIG_VALUES = st.one_of(
    st.none(),
    NUMBERS,
    st.text(max_size=8),
    st.booleans(),
    st.lists(st.one_of(st.integers(-2, 2), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def config_text(draw: st.DrawFn, keys: list[str]) -> str:
    """YAML text: a mapping of (mostly known) keys to random values, or not a mapping at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from(["", "- a\n- b\n", "just text", "a: [1,\n", "\t:", "42"]))
    mapping = draw(
        st.dictionaries(
            st.one_of(st.sampled_from(keys), st.text(max_size=5)), CONFIG_VALUES, max_size=4
        )
    )
    return yaml.safe_dump(mapping, allow_unicode=True)


@pytest.mark.slow
@FUZZ
@given(
    text=config_text(
        [
            "store",
            "forecasters",
            "cutoffs",
            "ratio",
            "policy",
            "min_keep",
            "eps",
            "timeout",
            "eb_spacing",
            "plugins",
            "json",
            "html",
        ]
    )
)
def test_compare_config(tiny_store: Path, text: str) -> None:
    with scratch() as folder:
        config = folder / "c.yaml"
        config.write_text(text)
        check(["compare", "--config", config, "--store", tiny_store], may_exit_1=True)


@pytest.mark.slow
@FUZZ
@given(
    spec=specs(),
    flags=_flags(
        _maybe("--ratio", st.floats(0, 1), NUMBERS),
        _maybe("--cutoff", GOOD_CUTOFFS, CUTOFFS),
        _maybe("--min-keep", st.integers(1, 40), NUMBERS),
        _maybe("--policy", st.sampled_from(["seed", "grouped"]), st.just("none")),
        _maybe(
            "--input-shape",
            st.sampled_from(["1,1,8,8", "2,1,8,8", "1,1,16,16"]),
            st.one_of(
                st.sampled_from(["1,1,100000,100000", "0,1,8,8", "1,x", "", "1,1,8", "2,3,8,8"]),
                st.text(max_size=10),
            ),
        ),
        _maybe("--model", st.just("darknet"), st.sampled_from(["vgg", "nope"])),
    ),
    checkpoint=st.sampled_from([None, "garbage", "empty-dict", "missing"]),
)
@example(spec="sma", flags=["--input-shape", "1,1,100000,100000"], checkpoint=None)
@example(spec="sma", flags=["--cutoff", "2"], checkpoint="empty-dict")
@example(spec="naive", flags=["--min-keep", 2**63], checkpoint=None)
def test_prune(spec: str, flags: list[Any], checkpoint: str | None) -> None:
    with scratch() as folder:
        weights: list[Any] = ["--random-init"]
        if checkpoint is not None:
            path = folder / "w.pt"
            if checkpoint == "garbage":
                path.write_bytes(b"PK\x03\x04 not really a checkpoint")
            elif checkpoint == "empty-dict":
                import torch

                torch.save({}, path)
            weights = ["--checkpoint", path]
        check(["prune", "--forecaster", spec, "--out", folder / "p.pt", *weights, *flags])


@pytest.mark.slow
@FUZZ
@given(
    data=st.data(),
    how=st.integers(0, 5),
    command=st.sampled_from(["info", "verify", "export", "forecast", "compare"]),
)
def test_damaged_stores(tiny_store: Path, data: st.DataObject, how: int, command: str) -> None:
    with scratch() as folder:
        store = _damage_store(tiny_store, folder, how, data)
        args = {
            "info": ["store", "info", store],
            "verify": ["store", "verify", store],
            "export": ["store", "export", store, folder / "out.npz"],
            "forecast": [
                "forecast",
                "--store",
                store,
                "--forecaster",
                "sma",
                "--out",
                folder / "p.npz",
            ],
            "compare": ["compare", "--store", store, "--forecasters", "sma", "--cutoffs", "0.5"],
        }[command]
        check(args, may_exit_1=command == "compare")


@FUZZ
@given(
    made=npz_files(),
    flags=_flags(
        _maybe("--dtype", st.sampled_from(["float16", "x"])),
        _maybe("--fingerprint", st.text(max_size=5)),
    ),
)
def test_import_damaged_npz(made: tuple[str, Any], flags: list[Any]) -> None:
    with scratch() as folder:
        npz = _write_npz(folder / "in.npz", made)
        check(["store", "import", npz, folder / "s.fpstore", *flags])


@FUZZ
@given(
    content=st.sampled_from(["bytes", "state", "nested"]),
    steps=st.one_of(st.none(), st.sampled_from(["1", "x", "-1", "1,1", ""]), st.text(max_size=5)),
    pattern=st.one_of(st.none(), st.sampled_from(["(", r"(\d+)", "x", "(a)(b)", ""])),
)
def test_store_from_checkpoints(content: str, steps: str | None, pattern: str | None) -> None:
    import torch

    with scratch() as folder:
        path = folder / "epoch_3.pt"
        if content == "bytes":
            path.write_bytes(b"\x80\x02not a checkpoint")
        else:
            state = {
                "bn.weight": torch.ones(3),
                "bn.bias": torch.zeros(3),
                "bn.running_mean": torch.zeros(3),
                "bn.running_var": torch.ones(3),
            }
            torch.save(state if content == "state" else {"model": state, "lr": "x"}, path)
        args: list[Any] = ["store", "from-checkpoints", folder / "s.fpstore", path]
        args += ["--steps", steps] if steps is not None else []
        args += ["--step-pattern", pattern] if pattern is not None else []
        check(args)


#: (key, a value it must refuse) — train always gets one, so it must stop before training
BAD_TRAIN = [
    ("method", "prune-everything"),
    ("epochs", 0),
    ("epochs", "ten"),
    ("lr", -1),
    ("ratio", 1.5),
    ("prune_at", "soon"),
    ("schedule", "step"),
    ("model", "nope"),
    ("policy", "x"),
    ("forecaster", "smaa"),
    ("batch_size", -3),
    ("width", -1),
    ("unknown_key", 1),
    ("auto_tolerance", 2),
    ("widths", "wide"),
]


@FUZZ
@given(
    bad=st.sampled_from(BAD_TRAIN),
    text=config_text(
        [
            "method",
            "model",
            "epochs",
            "lr",
            "ratio",
            "prune_at",
            "forecaster",
            "policy",
            "sparsity",
            "seed",
            "min_keep",
        ]
    ),
    flags=_flags(
        _maybe("--epochs", st.integers(1, 3), NUMBERS),
        _maybe("--prune-at", GOOD_CUTOFFS, CUTOFFS),
        _maybe("--forecaster", specs()),
        _maybe("--seed", st.integers(0, 9), NUMBERS),
    ),
)
def test_train_refuses_bad_configs(bad: tuple[str, Any], text: str, flags: list[Any]) -> None:
    with scratch() as folder:
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError:
            loaded = None  # broken YAML is a bad config in its own right
        if isinstance(loaded, dict):  # keep the random keys, add the bad one
            loaded[bad[0]] = bad[1]
            text = yaml.safe_dump(loaded, allow_unicode=True)
        config = folder / "t.yaml"
        config.write_text(text)
        check(["train", "--config", config, *flags], must_fail=True)


#: (flag, a value it must refuse) — record always gets one, so it must stop before training
BAD_RECORD = [
    ("--model", "nope"),
    ("--epochs", "0"),
    ("--sparsity", "-1"),
    ("--lr", "0"),
    ("--lr-milestones", "0.5,x"),
    ("--lr-milestones", "1.5"),
    ("--widths", "a,b"),
    ("--widths", "-4"),
    ("--every", "0"),
    ("--relieve-top", "0"),
    ("--width", "0"),
    ("--dtype", "int8"),
    ("--sparsity-schedule", "wavy"),
    ("--gamma-init", "nan"),
]


@FUZZ
@given(
    bad=st.sampled_from(BAD_RECORD),
    flags=_flags(
        _maybe("--model", st.sampled_from(["darknet", "vgg", "resnet"])),
        _maybe("--sparsity", st.floats(0, 0.01), NUMBERS),
        _maybe("--every", st.integers(1, 5), NUMBERS),
        _maybe("--lr", st.floats(1e-3, 0.1), NUMBERS),
        _maybe("--lr-milestones", st.just("0.5"), st.text(max_size=6)),
        _maybe("--widths", st.just("8,8"), st.text(max_size=6)),
        _maybe("--width", st.floats(0.25, 1), NUMBERS),
        _maybe("--batch-size", st.integers(1, 64), NUMBERS),
    ),
)
def test_record_refuses_bad_flags(bad: tuple[str, str], flags: list[Any]) -> None:
    with scratch() as folder:
        check(
            [
                "record",
                "--out",
                folder / "run",
                "--epochs",
                "1",
                "--limit-batches",
                "1",
                *flags,
                *bad,
            ],
            must_fail=True,
        )


# ------------------------------------------------------------------------------ outputs
#: bytes a file may grow to under the file-size limit (``ulimit -f``); small ones must fail
FILE_SIZE_LIMITS = [0, 100, 4096, 1 << 16]


def _unwritable_folder(folder: Path) -> Path:
    """A folder nothing can be written into: read-only for this user, or, for root (whom
    permissions do not stop), a place in sysfs where the kernel refuses new entries."""
    if os.geteuid() != 0:
        locked = folder / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        return locked
    return Path("/sys/fs")


def _writers(tiny_store: Path, folder: Path) -> dict[str, Any]:
    """Each command that writes an output, as ``out folder -> arguments``."""
    npz = folder / "in.npz"
    if not npz.exists():
        rng = np.random.default_rng(0)
        np.savez(
            npz,
            steps=np.arange(1000),
            gammas=rng.random((1000, 6)).astype(np.float32),
            layer_names=np.array(LAYOUT.names),
            layer_sizes=np.array(LAYOUT.sizes),
        )
    config = folder / "t.yaml"
    config.write_text(
        yaml.safe_dump(
            {"width": 0.5, "epochs": 1, "batch_size": 32, "train_subset": 64, "method": "normal"}
        )
    )
    return {
        "forecast": lambda o: [
            "forecast",
            "--store",
            tiny_store,
            "--forecaster",
            "sma",
            "--out",
            o / "p.npz",
        ],
        "prune": lambda o: ["prune", "--random-init", "--forecaster", "naive", "--out", o / "p.pt"],
        "export": lambda o: ["store", "export", tiny_store, o / "e.npz"],
        "thin": lambda o: ["store", "thin", tiny_store, o / "t.fpstore", "--every", "2"],
        "import": lambda o: ["store", "import", npz, o / "i.fpstore"],
        "fit-ridge": lambda o: ["fit-forecaster", "--stores", tiny_store, "--out", o / "m.json"],
        "fit-gbr": lambda o: [
            "fit-forecaster",
            "--kind",
            "gbr",
            "--stores",
            tiny_store,
            "--out",
            o / "m.skops",
        ],
        "compare": lambda o: [
            "compare",
            "--store",
            tiny_store,
            "--forecasters",
            "sma",
            "--cutoffs",
            "0.5",
            "--json",
            o / "r.json",
        ],
        "record": lambda o: [
            "record",
            "--out",
            o / "run",
            "--epochs",
            "1",
            "--limit-batches",
            "1",
            "--widths",
            "4,8,8,4",
        ],
        "train": lambda o: ["train", "--config", config, "--out", o / "t"],
    }


@contextlib.contextmanager
def _file_size_limit(nbytes: int | None) -> Iterator[None]:
    import resource

    if nbytes is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.slow
@FUZZ
@given(
    command=st.sampled_from(
        [
            "forecast",
            "prune",
            "export",
            "thin",
            "import",
            "fit-ridge",
            "fit-gbr",
            "compare",
            "record",
            "train",
        ]
    ),
    obstacle=st.sampled_from(["file-size", "read-only", "under-a-file"]),
    limit=st.sampled_from(FILE_SIZE_LIMITS),
)
@example(command="import", obstacle="file-size", limit=4096)  # fails inside a segment
@example(command="record", obstacle="file-size", limit=4096)  # the store fits, model.pt not
@example(command="train", obstacle="read-only", limit=0)
def test_outputs_that_cannot_be_written(
    tiny_store: Path, command: str, obstacle: str, limit: int
) -> None:
    """Disk full, read-only, the file-size limit: one ``Error:`` line, never a traceback."""
    with scratch() as folder:
        args = _writers(tiny_store, folder)[command]
        if obstacle == "file-size":
            with _file_size_limit(limit):
                check(args(folder), must_fail=limit <= 100)
            return
        if obstacle == "read-only":
            out = _unwritable_folder(folder)
        else:
            (folder / "a-file").write_text("not a folder")
            out = folder / "a-file"
        check(args(out), must_fail=True)
