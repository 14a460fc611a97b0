"""Every command README.md shows runs, as written or as close to it as a test can, in a temporary copy of the
repository (its tracked and new files; .venv and node_modules linked, being installs), so the repository
itself is never changed.

The commands are the README's indented and fenced lines and its inline `code` that start with
`.venv/bin/python`, `.venv/bin/samtab-` (the installed tools), `python tools/` or `bash`. COMMANDS below says
how each is run; a command the README gains that COMMANDS does not know fails
test_every_readme_command_is_known (and one it drops, too), so the README cannot show a command nobody has
run. Each command's time is printed in "samtab figures".

The copy shares the repository's .venv, whose editable install resolves `pyapp` and `samtab_tools` (the
installed commands' code) to the repository itself: the commands run with PYTHONPATH naming links to the
copy's own pyapp/ and tools/, so that they import and write the copy, as an install of the copy would.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PREFIXES = (".venv/bin/python ", ".venv/bin/samtab-", "python tools/", "bash ")
# README commands that others need first.
DEMOS_COMMAND = ".venv/bin/samtab-demos"
BASELINE_COMMAND = ".venv/bin/samtab-baseline --out models/baseline"
CHECKPOINT_EXPORT = (
    ".venv/bin/samtab-export --checkpoint sam2.1_hiera_large.pt --config sam2.1_hiera_l --out models/sam2.1-large"
)


def readme_commands(text: str) -> list[str]:
    """The commands README.md shows, in order, without trailing comments and with single spaces."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        candidates = [line.strip().removeprefix("$ ")] if fenced or line.startswith("    ") else []
        candidates += re.findall(r"`([^`\n]+)`", line) if not fenced else []
        for candidate in candidates:
            if candidate.startswith(PREFIXES):
                command = " ".join(shlex.split(candidate, comments=True))
                if command not in found:
                    found.append(command)
    return found


# --- how each command is run -------------------------------------------------------------------------------


@dataclass
class Copy:
    """The temporary copy of the repository, the folder for what must not land in it, the environment its
    commands run in, and what ran."""

    root: Path
    scratch: Path
    env: dict[str, str]
    done: dict[str, object] = field(default_factory=dict)
    times: list[str] = field(default_factory=list)

    def run(self, command: str, *, timeout: float = 300, expect: int = 0, label: str | None = None):
        """`command` through bash in the copy; fails on another exit code, showing its output."""
        started = time.perf_counter()
        result = subprocess.run(
            ["bash", "-c", command], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        self.times.append(f"{time.perf_counter() - started:6.1f} s  {label or command}")
        assert result.returncode == expect, (
            f"`{command}` exited {result.returncode}, expected {expect}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
        return result

    def once(self, command: str):
        """Run a README command's way (once per module: later commands may need what it made)."""
        if command not in self.done:
            self.done[command] = COMMANDS[command].run(self, command)
        return self.done[command]

    def serve(
        self,
        command: str,
        check: Callable[[http.client.HTTPResponse, bytes], None],
        *,
        path: str = "/",
        timeout: float = 120,
    ) -> None:
        """Start a command that serves for ever (on a free port: PORT=0), GET `path` from the URL it prints
        and check the answer (the response and its body), then stop it with Ctrl-C (SIGINT) and expect a
        clean exit."""
        started = time.perf_counter()
        process = subprocess.Popen(
            shlex.split(command),
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**self.env, "PORT": "0"},
        )
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
        reader.start()
        try:
            output, url, deadline = [], None, time.monotonic() + timeout
            while url is None and time.monotonic() < deadline:
                try:
                    output.append(lines.get(timeout=1))
                except queue.Empty:
                    if process.poll() is not None:
                        break
                    continue
                match = re.search(r"at (http://[^\s/]+:\d+)", output[-1])
                url = match and match.group(1)
            assert url, f"`{command}` printed no URL:\n{''.join(output)}"
            host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            connection.close()
            assert response.status == 200, (response.status, body[:500])
            check(response, body)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=20) == 0, "".join(output)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            reader.join(timeout=10)
            process.stdout.close()
        self.times.append(f"{time.perf_counter() - started:6.1f} s  {command} (started, GET {path} answered, stopped)")


def substitute(command: str, changes: dict[str, str]) -> str:
    """The command with each README placeholder replaced (each must occur exactly once)."""
    for old, new in changes.items():
        assert command.count(old) == 1, f"{old!r} should occur once in `{command}`"
        command = command.replace(old, new)
    return command


def checked_setup(copy: Copy, setup: str) -> None:
    """tools/setup.sh as written, in the copy. Its skip path (everything done: CI runs the README's test
    command, setup included, before the tests) takes a few seconds; only that path may run here, so the
    test first makes sure nothing would be installed: setup.sh would otherwise reinstall the project into
    the shared .venv from this temporary copy, or install packages on the machine. Unknown options are
    refused (exit 2)."""
    stamp_file = ROOT / ".venv" / ".samtab-installed"
    stamp = stamp_file.read_text().split() if stamp_file.exists() else []
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    chromium = os.environ.get("SAMTAB_CHROMIUM", "/usr/bin/chromium")
    if stamp != ["test", wanted] or not shutil.which("npm") or not os.access(chromium, os.X_OK):
        pytest.fail(
            "this machine is not set up for the tests (.venv from this pyproject.toml, npm, Chromium): "
            "run `bash tools/setup.sh --test`",
            pytrace=False,
        )
    result = copy.run(setup, timeout=120)
    assert "setup: installing" not in result.stdout and result.stdout.rstrip().endswith("setup: ready"), result.stdout
    refused = copy.run("bash tools/setup.sh --no-such-option", expect=2)
    assert "unknown option --no-such-option" in refused.stderr


def setup_and_serve(copy: Copy, command: str) -> None:
    setup, serve = command.split(" && ")
    checked_setup(copy, setup)
    copy.serve(serve, lambda response, body: None)


def setup_for_tests(copy: Copy, command: str) -> None:
    setup, _ = command.split(" && ")
    checked_setup(copy, setup)


def make_baseline(copy: Copy, command: str) -> None:
    """By the README's order models/baseline exists already (serve.py builds the demos, and demos.py the
    baseline), so the command as written refuses to replace it; with --out elsewhere it builds one."""
    copy.once(DEMOS_COMMAND)
    refused = copy.run(command, expect=1)
    assert "models/baseline already exists; pass --force" in refused.stderr
    out = copy.scratch / "models" / "baseline"
    copy.run(substitute(command, {"--out models/baseline": f"--out {out}"}))
    assert json.loads((out / "model.json").read_text())["family"] == "baseline"


def export_checkpoint(copy: Copy, command: str) -> Path:
    """A checkpoint saved as Meta's are ({"model": state_dict}) from SAM2.1 tiny with random weights, exported
    with --config sam2.1_hiera_t: the large config takes ~76 s and 4 GB of memory, through the same code."""
    checkpoint = copy.scratch / "sam2.1_hiera_tiny.pt"
    copy.run(
        f"{sys.executable} -c {shlex.quote(MAKE_CHECKPOINT)} {shlex.quote(str(checkpoint))}",
        timeout=300,
        label=f"(the checkpoint: random-init SAM2.1 tiny, seed 1, as {{'model': state_dict}}: {checkpoint})",
    )
    out = copy.scratch / "models" / "sam2.1-large"
    copy.run(
        substitute(
            command,
            {
                "--checkpoint sam2.1_hiera_large.pt": f"--checkpoint {checkpoint}",
                "--config sam2.1_hiera_l": "--config sam2.1_hiera_t",
                "--out models/sam2.1-large": f"--out {out}",
            },
        ),
        timeout=600,
    )
    info = json.loads((out / "model.json").read_text())
    assert info["weights"] == "sha256:" + hashlib.sha256(checkpoint.read_bytes()).hexdigest(), info["weights"]
    return out


MAKE_CHECKPOINT = """\
import sys
import torch
from samtab_tools import export_sam2
model = export_sam2.build_model("sam2.1_hiera_t", seed=1)
torch.save({"model": model.state_dict()}, sys.argv[1])
"""


def download_offline(copy: Copy, command: str) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = copy.scratch / "models" / "sam2.1-tiny"
    changed = substitute(command, {"--out models/sam2.1-tiny": f"--out {out}"})
    result = copy.run(f"{changed} --cache {copy.scratch / 'cache'} --mirror http://127.0.0.1:{port}/", expect=1)
    assert "could not reach" in result.stderr and "sam2.1_hiera_tiny.pt (156.0 MB)" in result.stderr, result.stderr
    assert not out.exists()


def export_random_init(copy: Copy, command: str) -> None:
    out = copy.scratch / "models" / "sam2.1-tiny-random"
    copy.run(substitute(command, {"--out models/sam2.1-tiny-random": f"--out {out}"}) + " --no-check", timeout=600)
    assert json.loads((out / "model.json").read_text())["weights"] == "random-init, seed 0"


def encode_photos(copy: Copy, command: str) -> None:
    model = copy.once(CHECKPOINT_EXPORT)
    photos = copy.scratch / "photos"
    (photos / "folder").mkdir(parents=True)
    copy.run(f".venv/bin/python tools/synthetic.py {photos}/shapes.png {photos}/shapes.json")
    copy.run(
        f".venv/bin/python tools/synthetic.py {photos}/folder/other.png {photos}/other.json --seed 1 --size 320x240"
    )
    result = copy.run(
        substitute(
            command,
            {
                "PHOTOS_OR_FOLDERS...": f"{photos}/shapes.png {photos}/folder",
                "--model models/sam2.1-large": f"--model {model}",
            },
        ),
        timeout=600,
    )
    assert "2 encoded, 0 skipped, 0 failed" in result.stdout, result.stdout
    bundles = sorted(p.name for p in (copy.root / "bundles").glob("*.msgpack"))
    assert bundles == ["other.png.msgpack", "shapes.png.msgpack"], bundles


def encode_on_ray(copy: Copy, command: str) -> None:
    model = copy.once(CHECKPOINT_EXPORT)
    photos = copy.scratch / "ray-photos"
    photos.mkdir()
    for seed in range(3):
        copy.run(f".venv/bin/python tools/synthetic.py {photos}/p{seed}.png {photos}/p{seed}.json --seed {seed}")
    out = copy.scratch / "ray-bundles"
    changes = {
        "PHOTOS_OR_FOLDERS...": " ".join(f"{photos}/p{seed}.png" for seed in range(3)),
        "--model models/sam2.1-large": f"--model {model}",
        "--out bundles/": f"--out {out}",
    }
    result = copy.run(substitute(command, changes), timeout=600)
    assert "3 encoded, 0 skipped, 0 failed" in result.stdout, result.stdout
    assert "encode: Ray: 2 actors (0 GPU, 1 CPU each) for 3 photos" in result.stderr, result.stderr
    assert sorted(p.name for p in out.glob("*.msgpack")) == [f"p{seed}.png.msgpack" for seed in range(3)]


def encode_collection(copy: Copy, command: str) -> None:
    from pyapp import collection

    model = copy.once(CHECKPOINT_EXPORT)
    photos = copy.scratch / "pets"
    photos.mkdir()
    for seed in range(2):
        copy.run(f".venv/bin/python tools/synthetic.py {photos}/p{seed}.png {photos}/p{seed}.json --seed {seed}")
    changes = {"PHOTOS_OR_FOLDERS...": str(photos), "--model models/sam2.1-large": f"--model {model}"}
    result = copy.run(substitute(command, changes), timeout=600)
    assert "2 encoded, 0 skipped, 0 failed" in result.stdout, result.stdout
    index = collection.read_index((copy.root / "site" / "collections" / "pets" / "collection.json").read_bytes())
    assert (index.name, index.classes, [p.name for p in index.photos]) == ("Pets", ["cat", "dog"], ["p0.png", "p1.png"])
    assert all((copy.root / "site" / "collections" / "pets" / p.bundle).exists() for p in index.photos)


def web_encoder(copy: Copy, command: str) -> None:
    model = copy.once(CHECKPOINT_EXPORT)
    result = copy.run(substitute(command, {"models/sam2.1-large": str(model)}) + " --fp32", timeout=600)
    assert "web_encoder: wrote" in result.stdout, result.stdout
    assert json.loads((model / "model.json").read_text())["files"]["encoder_web"] == "encoder_web.onnx"


def import_pair(copy: Copy, command: str) -> None:
    model = copy.once(CHECKPOINT_EXPORT)
    out = copy.scratch / "models" / "imported"
    substitutions = {
        "ENCODER.onnx": str(model / "encoder.onnx"),
        "DECODER.onnx": str(model / "decoder.onnx"),
        "--out models/NAME": f"--out {out}",
        "--name NAME": "--name imported-tiny",
    }
    result = copy.run(substitute(command, substitutions) + " --no-web-encoder", timeout=600)
    assert "import_onnx: wrote" in result.stdout, result.stdout
    assert json.loads((out / "model.json").read_text())["name"] == "imported-tiny"


def build_demos(copy: Copy, command: str) -> None:
    copy.run(command, timeout=300)
    index = json.loads((copy.root / "site/demos/index.json").read_text())
    assert {"shapes", "coffee", "chelsea", "astronaut", "rocket"} <= {demo["slug"] for demo in index["demos"]}


def segment_demo(copy: Copy, command: str) -> None:
    copy.once(DEMOS_COMMAND)
    result = copy.run(command)
    summary = json.loads(result.stdout)
    assert summary["decodes"] == 2 and summary["area_px"] > 0 and (copy.root / "mask.png").is_file()


def bench(arguments: dict[str, str] | str, expect: str) -> Callable[[Copy, str], None]:
    """A benchmark with the given smaller arguments (each drives what it measures once or twice), after the
    demos are built (bench encode and pipeline use models/baseline, which demos.py makes)."""

    def run(copy: Copy, command: str) -> None:
        copy.once(DEMOS_COMMAND)
        smaller = substitute(command, arguments) if isinstance(arguments, dict) else f"{command} {arguments}"
        result = copy.run(smaller, timeout=300)
        assert expect in result.stdout, result.stdout[-2000:]

    return run


def screenshots(copy: Copy, command: str) -> None:
    result = copy.run(command, timeout=300)
    # 3 views, remove background, everything, phone, zoomed in
    assert result.stdout.count("screenshots: ") == 7, result.stdout


def fuzz_bundles(copy: Copy, command: str) -> None:
    copy.run(substitute(command, {"--fuzz-cases 50000": "--fuzz-cases 1000 -q -p no:cacheprovider"}), timeout=300)


def vendor(copy: Copy, command: str) -> None:
    copy.run(substitute(command, {"python tools/": ".venv/bin/python tools/"}))
    assert (copy.root / "site/vendor/MANIFEST.json").is_file()


def site_build(copy: Copy, command: str) -> None:
    from samtab_tools import site_build as builder

    copy.run(substitute(command, {"python tools/": ".venv/bin/python tools/"}))
    built = builder.read(copy.root / "site")
    assert built["files"]["app.js"]["size"] == (copy.root / "site" / "app.js").stat().st_size


def serve_without_headers(copy: Copy, command: str) -> None:
    def no_isolation(response, body):
        assert response.getheader("Cross-Origin-Opener-Policy") is None

    copy.serve(substitute(command, {"python tools/": ".venv/bin/python tools/"}), no_isolation)


def encode_service(copy: Copy, command: str) -> None:
    model = copy.once(CHECKPOINT_EXPORT)
    name = json.loads((model / "model.json").read_text())["name"]

    def healthy(response, body):
        health = json.loads(body)
        assert health["ok"] and health["model"] == name and health["encoder"] == "encoder.onnx", health

    served = substitute(command, {"--model models/sam2.1-large": f"--model {model}"}) + " --port 0"
    copy.serve(served, healthy, path="/health")


SERVICE_ORIGIN = "https://encode.example.org"


def site_files(root: Path) -> dict[str, str]:
    return {name: (root / "site" / name).read_text() for name in ("settings.js", "_headers", "vercel.json")}


def set_encode_service(copy: Copy, command: str) -> None:
    before = site_files(copy.root)
    assert SERVICE_ORIGIN not in "".join(before.values())
    copy.run(command)
    after = site_files(copy.root)
    assert json.dumps(SERVICE_ORIGIN) in after["settings.js"], after["settings.js"]
    for name in ("_headers", "vercel.json"):
        policy = next(line for line in after[name].splitlines() if "connect-src" in line)
        assert f"connect-src 'self' {SERVICE_ORIGIN} blob: data:;" in policy, policy


def serve_with_service(copy: Copy, command: str) -> None:
    def names_the_service(response, body):
        policy = response.getheader("Content-Security-Policy")
        assert "connect-src 'self' http://127.0.0.1:8765 blob: data:;" in policy, policy
        assert SERVICE_ORIGIN not in policy, "the run's service replaces the site's"

    copy.serve(command, names_the_service)


def no_encode_service(copy: Copy, command: str) -> None:
    copy.run(command)
    assert site_files(copy.root) == site_files(ROOT), "back to the site as shipped: no service, connect-src 'self'"


@dataclass(frozen=True)
class Way:
    how: str  # what runs, and why it differs from the README, if it does
    run: Callable[[Copy, str], object]


COMMANDS: dict[str, Way] = {
    "bash tools/setup.sh && .venv/bin/python tools/serve.py": Way(
        "setup.sh as written (its skip path: CI runs setup before the tests) and `--no-such-option` (exit 2); "
        "then serve.py as written with PORT=0, GET / answers 200, Ctrl-C stops it",
        setup_and_serve,
    ),
    "bash tools/setup.sh --test && .venv/bin/python -m pytest": Way(
        "setup.sh --test as written (skip path) and a bad option; pytest is not run: it is this very suite, "
        "which CI runs with this command (.ci/run)",
        setup_for_tests,
    ),
    ".venv/bin/samtab-screenshots": Way("as written (Chromium, ~12 s)", screenshots),
    BASELINE_COMMAND: Way(
        "as written it must refuse (exit 1: models/baseline exists by then, as serve.py built the demos), "
        "and with --out in a scratch folder it builds the model",
        make_baseline,
    ),
    CHECKPOINT_EXPORT: Way(
        "a checkpoint saved as Meta's are, {'model': state_dict}, of a random-init SAM2.1 tiny, with "
        "--config sam2.1_hiera_t (the large one takes ~76 s and 4 GB, through the same code); --out outside "
        "models/, so that demos.py does not encode every demo with it too",
        export_checkpoint,
    ),
    ".venv/bin/python tools/serve.py": Way(
        "as written with PORT=0: it builds the gallery with every model in models/, GET / answers 200, Ctrl-C stops it",
        lambda copy, command: copy.serve(command, lambda response, body: None),
    ),
    "bash tools/setup.sh --export": Way("as written (its skip path, as above) and a bad option", checked_setup),
    ".venv/bin/samtab-export --download tiny --out models/sam2.1-tiny": Way(
        "--out in a scratch folder, and --mirror a loopback port nothing listens on: Meta's server cannot be "
        "reached from here, so it must fail (exit 1) saying what to do and write nothing; the download itself "
        "(cut, resumed, checked) and its export run against a loopback mirror in test_export_sam2.py",
        download_offline,
    ),
    ".venv/bin/samtab-export --random-init --seed 0 --out models/sam2.1-tiny-random": Way(
        "--out outside models/ (as above) and --no-check (the check, ~26 s, runs in the export just above "
        "and in test_export_sam2.py)",
        export_random_init,
    ),
    ".venv/bin/samtab-encode PHOTOS_OR_FOLDERS... --model models/sam2.1-large --out bundles/": Way(
        "a photo and a folder holding another; --model the export above", encode_photos
    ),
    ".venv/bin/samtab-encode PHOTOS_OR_FOLDERS... --model models/sam2.1-large --out site/collections/pets "
    "--index Pets --classes cat,dog": Way(
        "a folder of two synthetic photos, --model the export above; the index read back", encode_collection
    ),
    "bash tools/setup.sh --scale": Way("as written (its skip path, as above) and a bad option", checked_setup),
    ".venv/bin/samtab-encode PHOTOS_OR_FOLDERS... --model models/sam2.1-large --out bundles/ --ray": Way(
        "three synthetic photos, --model the export above, --out in a scratch folder; a Ray of this machine "
        "(2 CPUs: 2 actors) is started by the command",
        encode_on_ray,
    ),
    ".venv/bin/samtab-web-encoder models/sam2.1-large": Way(
        "on the export above, with --fp32 (the float16 attempt's fidelity check, ~30 s, ran in that export)",
        web_encoder,
    ),
    ".venv/bin/samtab-import ENCODER.onnx DECODER.onnx --out models/NAME --name NAME": Way(
        "the export above's pair, --out in a scratch folder, --no-web-encoder (made and checked in that export)",
        import_pair,
    ),
    ".venv/bin/samtab-encode-service --model models/sam2.1-large": Way(
        "--model the export above, --port 0; GET /health names the model; Ctrl-C (the service itself: "
        "test_encode_service.py)",
        encode_service,
    ),
    f".venv/bin/samtab-site-settings --encode-service {SERVICE_ORIGIN}": Way(
        "as written: settings.js holds the origin, _headers' and vercel.json's connect-src name it",
        set_encode_service,
    ),
    ".venv/bin/python tools/serve.py --encode-service http://127.0.0.1:8765": Way(
        "as written with PORT=0: GET / sends a CSP whose connect-src names that origin, not the site's; Ctrl-C",
        serve_with_service,
    ),
    ".venv/bin/samtab-site-settings --no-encode-service": Way(
        "as written: settings.js, _headers and vercel.json are again those of the repository", no_encode_service
    ),
    DEMOS_COMMAND: Way("as written", build_demos),
    ".venv/bin/samtab-segment --demo site/demos/shapes --point 120,200 --point 300,90,0 --out mask.png": Way(
        "as written, after samtab-demos", segment_demo
    ),
    ".venv/bin/python -m pytest tests/unit/test_bundle_fuzz.py --fuzz-cases 50000": Way(
        "--fuzz-cases 1000, ~7 s (the suite itself runs 10,000; at 200 the fuzzer's own check that every "
        "msgpack was reached fails about one run in six)",
        fuzz_bundles,
    ),
    "python tools/vendor.py": Way("with .venv/bin/python", vendor),
    "python tools/site_build.py": Way("with .venv/bin/python; build.js lists app.js by its size", site_build),
    "python tools/serve.py --no-isolation-headers": Way(
        "with .venv/bin/python and PORT=0; GET / has no COOP header; Ctrl-C", serve_without_headers
    ),
    ".venv/bin/samtab-bench boot --runs 5": Way(
        "--runs 1 (Chromium, ~10 s)", bench({"--runs 5": "--runs 1"}, "ORT ready")
    ),
    ".venv/bin/samtab-bench boot --demo shapes": Way("--runs 1 (~15 s)", bench("--runs 1", "first mask painted")),
    ".venv/bin/samtab-bench click": Way(
        "--demo shapes --clicks 2 --threads 1 (~15 s)",
        bench("--demo shapes --clicks 2 --threads 1", "click to mask painted"),
    ),
    ".venv/bin/samtab-bench click --demo shapes-12mp --threads 0 --zoom fit,50,100,400": Way(
        "--clicks 2 --zoom 400 (~20 s)",
        bench({"--zoom fit,50,100,400": "--zoom 400 --clicks 2"}, "zoomed to 400 %"),
    ),
    ".venv/bin/samtab-bench encode": Way(
        "--runs 1 (models/ of the copy holds the baseline only)", bench("--runs 1", "encode with")
    ),
    ".venv/bin/samtab-bench encode --tab shapes-sam2.1-tiny-random": Way(
        "--tab shapes --runs 1 (the baseline's encoder: ~15 s; SAM2.1's is measured in the note)",
        bench({"--tab shapes-sam2.1-tiny-random": "--tab shapes --runs 1"}, "in the tab, 2 threads"),
    ),
    ".venv/bin/samtab-bench encode --ray 2": Way(
        "--runs 1 (one copy of each demo photo; models/ of the copy holds the baseline only)",
        bench({"--ray 2": "--ray 2 --runs 1"}, "outputs identical: True"),
    ),
    ".venv/bin/samtab-bench collection": Way(
        "--photos 20 --runs 1 (the 200-photo figures are in the README)",
        bench("--photos 20 --runs 1", "page/CPython"),
    ),
    ".venv/bin/samtab-bench pipeline": Way(
        "--photo 960x640 --runs 1 (at the default 12 MP photo it takes ~14 s)",
        bench("--photo 960x640 --runs 1", "pipeline in CPython"),
    ),
}


# --- the tests ---------------------------------------------------------------------------------------------


def test_every_readme_command_is_known():
    shown = readme_commands(README.read_text())
    unknown = [command for command in shown if command not in COMMANDS]
    assert not unknown, (
        "README.md shows commands this test does not know how to run; add each to COMMANDS "
        "in tests/unit/test_readme_commands.py:\n" + "\n".join(unknown)
    )
    gone = [command for command in COMMANDS if command not in shown]
    assert not gone, "COMMANDS lists commands README.md no longer shows:\n" + "\n".join(gone)


def test_the_readme_parser_finds_indented_fenced_and_inline_commands():
    text = (
        "Run `.venv/bin/python tools/a.py --x 1` or `python -c 1`.\n\n"
        "    bash tools/setup.sh && .venv/bin/python tools/b.py   # a comment\n"
        "    .venv/bin/samtab-d --z   # an installed command\n"
        "    not a command\n\n```\n$ .venv/bin/python tools/c.py  --y\n```\n"
    )
    assert readme_commands(text) == [
        ".venv/bin/python tools/a.py --x 1",
        "bash tools/setup.sh && .venv/bin/python tools/b.py",
        ".venv/bin/samtab-d --z",
        ".venv/bin/python tools/c.py --y",
    ]


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    """The repository's tracked and new (not ignored) files, copied; .venv and node_modules linked."""
    root = tmp_path_factory.mktemp("readme") / "samtab"
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is listed too
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(source.read_bytes())
            (root / name).chmod(source.stat().st_mode & 0o777)
    for install in (".venv", "node_modules"):
        (root / install).symlink_to(ROOT / install)
    scratch = tmp_path_factory.mktemp("readme-scratch")
    importable = tmp_path_factory.mktemp("readme-importable")  # the copy's packages, by their installed names
    (importable / "pyapp").symlink_to(root / "pyapp")
    (importable / "samtab_tools").symlink_to(root / "tools")
    copy = Copy(root, scratch, {**os.environ, "PYTHONPATH": str(importable)})
    found = copy.run('.venv/bin/python -c "import pyapp, samtab_tools; print(pyapp.__file__, samtab_tools.__file__)"')
    assert all(Path(name).resolve().is_relative_to(root) for name in found.stdout.split()), found.stdout  # not ROOT's
    return copy


def short(command: str) -> str:
    command = command.removeprefix(".venv/bin/python ")
    return command if len(command) <= 60 else command[:57] + "..."


@pytest.mark.parametrize("command", list(COMMANDS), ids=[short(c) for c in COMMANDS])
def test_readme_command_runs(copy, figures, command):
    copy.times.clear()
    if command in copy.done:
        copy.times.append("ran already, for an earlier command that needs it")
    copy.once(command)
    figures(f"{command}\n    run as: {COMMANDS[command].how}\n    " + "\n    ".join(copy.times))
