"""samtab-encode --ray: the photos of a large collection encoded by Ray actors, one onnxruntime session each.

    samtab-encode PHOTOS_OR_FOLDERS... --model DIR --out DIR --ray [ADDRESS] [--actors N]

Ray does the distribution: a pool of actors (`PhotoEncoder`), each holding one session on the model's
encoder (a GPU each when the cluster has GPUs, else one CPU and one onnxruntime thread each), takes the photos
as they come; an actor that dies (its machine lost, its process killed) is restarted by Ray and the photos it
held are run again (`max_restarts`, `max_task_retries`). The driver, this process, keeps what the serial run
does: it reads each photo, skips one already encoded with this model (by the photo's sha256, as the bundle
records it), refuses to replace another's bundle without --force, writes every preview and bundle atomically
into --out, reports a failed photo and goes on, and prints the same lines and summary. The actors get the
encoder file's bytes and each photo's bytes from the driver through Ray's object store and send back the two
files' bytes, so the workers need no shared file system and no copy of the model: the bundles are those the
serial run writes, byte for byte.

ADDRESS is Ray's own (`ray.init(address=...)`): none for Ray's default (the cluster in $RAY_ADDRESS, or the one
running on this machine, or a new one on this machine alone), `auto` for the cluster running on this machine,
`HOST:6379` or `ray://HOST:10001` for a remote one. When this process has started Ray already (the tests do),
that Ray is used.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pyapp import bundle as bundles
from pyapp import image as images
from pyapp.model import ModelInfo
from samtab_tools import encode
from samtab_tools.encode import Encoder, Made, Result

# An actor lost is made again this many times (each time its photos in flight are run again), then the photos
# it held are reported as failed and the rest go on with the other actors.
MAX_RESTARTS = 3
IN_FLIGHT_PER_ACTOR = 2  # one running, one waiting in the actor's queue: no actor idles between photos
ACTOR_NAME = "PhotoEncoder"


class PhotoEncoder:
    """A Ray actor: one onnxruntime session, made once from the encoder file's bytes; photos in, files out."""

    def __init__(self, info: ModelInfo, part: str, provider: str, threads: int):
        self.info, self.part, self.provider_name, self.threads = info, part, provider, threads
        self.encoder: Encoder | None = None

    def load(self, model: list) -> Encoder:
        """The session, made on the first photo from the encoder file's bytes. model: [the ObjectRef of those
        bytes], inside a list so that it reaches here unresolved and is fetched once per actor; it comes with
        every photo rather than with the constructor, whose arguments Ray keeps for restarts (and warns about
        when they live in the object store)."""
        if self.encoder is None:
            import ray

            data = ray.get(model[0])
            provider = encode.choose_provider(self.provider_name)
            self.encoder = Encoder(Path("."), self.info, provider, self.part, data=data, threads=self.threads)
            self.encoder.load()
        return self.encoder

    def pid(self) -> int:
        return os.getpid()

    def encode(self, model: list, name: str, data: bytes, dtype: str, preview_edge: int) -> Made | str:
        """The photo's preview and bundle, or why it could not be encoded (a message: the driver reports it
        against the photo and goes on)."""
        started = time.perf_counter()
        try:
            opened = images.open_photo(data, name=name)
            load_ms = (time.perf_counter() - started) * 1000
            made = encode.make_outputs(opened, self.load(model), dtype=dtype, preview_edge=preview_edge)
        except (images.PhotoError, bundles.BundleError) as error:
            return str(error)
        except Exception as error:  # noqa: BLE001 - one bad photo (or a model error on it) must not stop the batch
            return f"{type(error).__name__}: {error}"
        made.timings_ms = {"load": load_ms, **made.timings_ms}
        return made


@dataclass
class Plan:
    """How many actors, and what each takes from the cluster."""

    actors: int
    num_cpus: float
    num_gpus: float
    threads: int


def plan(resources: dict, provider: str, actors: int | None) -> Plan:
    """A GPU per actor when the cluster has GPUs and the provider may use them; else one CPU and one
    onnxruntime thread per actor (as many actors as CPUs: a session with N threads is no faster than N
    sessions with one, and a lost actor loses less)."""
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    if gpus and provider.lower() in ("auto", "cuda", "cudaexecutionprovider"):
        return Plan(actors or gpus, 1, 1, 0)
    return Plan(actors or cpus, 1, 0, 1)


def start_ray(address: str | None):
    try:
        import ray
    except ImportError:
        raise encode.UsageError(
            "--ray needs Ray, which is not installed here: pip install 'ray==2.60.0' "
            "(or install samtab with its scale extra: pip install -e '.[scale]')"
        ) from None

    if not ray.is_initialized():
        options = {"logging_level": "ERROR", "log_to_driver": True}
        if address is None and not os.environ.get("RAY_ADDRESS"):
            options["include_dashboard"] = False  # a Ray of our own, on this machine: no dashboard to serve
        ray.init(address=address, **options)
    return ray


def encode_all(
    photos: list[Path],
    model_dir: Path,
    out_dir: Path,
    *,
    address: str | None = None,
    actors: int | None = None,
    dtype: str = "float16",
    provider: str = "auto",
    force: bool = False,
    preview_edge: int = encode.DEFAULT_PREVIEW_EDGE,
    progress: bool = True,
    part: str = "encoder",
) -> list[Result]:
    """Encode `photos` on Ray; the Results in the photos' order (the lines are printed as photos finish)."""
    from tqdm import tqdm

    info = encode.read_model_folder(model_dir)
    encode.prepare_out(out_dir)
    results: dict[Path, Result] = {}
    todo: list[Path] = []
    for photo in photos:  # what is done already is skipped here, before Ray starts
        result = check(photo, out_dir, info.name, force) if (out_dir / f"{photo.name}.msgpack").exists() else None
        if result:
            results[photo] = result
            encode.report(result, progress)
        else:
            todo.append(photo)
    if not todo:
        return [results[p] for p in photos]

    ray = start_ray(address)
    shape = plan(ray.cluster_resources(), provider, actors)
    model = ray.put((model_dir / info.files[part]).read_bytes())
    actor_class = ray.remote(PhotoEncoder).options(
        num_cpus=shape.num_cpus,
        num_gpus=shape.num_gpus,
        max_restarts=MAX_RESTARTS,
        max_task_retries=MAX_RESTARTS,
    )
    pool = [actor_class.remote(info, part, provider, shape.threads) for _ in range(min(shape.actors, len(todo)))]
    print(
        f"encode: Ray: {plural(len(pool), 'actor')} ({shape.num_gpus:g} GPU, {shape.num_cpus:g} CPU each) "
        f"for {plural(len(todo), 'photo')} on {ray.cluster_resources().get('CPU', 0):g} CPUs",
        file=sys.stderr,
        flush=True,
    )
    bar = tqdm(
        total=len(todo),
        unit="photo",
        disable=not progress or len(todo) < 2,
        file=sys.stderr,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}",
    )
    running: dict = {}  # ObjectRef -> (photo, actor index)
    load = [0] * len(pool)
    queue = iter(todo)
    try:
        while True:
            while len(running) < IN_FLIGHT_PER_ACTOR * len(pool):
                photo = next(queue, None)
                if photo is None:
                    break
                try:
                    data = photo.read_bytes()  # read as it is sent: the collection is never in memory at once
                except OSError as error:
                    results[photo] = Result(photo, "failed", f"cannot read {photo}: {error.strerror or error}")
                    encode.report(results[photo], progress)
                    bar.update(1)
                    continue
                index = min(range(len(pool)), key=load.__getitem__)
                ref = pool[index].encode.remote([model], photo.name, data, dtype, preview_edge)
                running[ref] = (photo, index)
                load[index] += 1
            if not running:
                break
            done, _ = ray.wait(list(running), num_returns=1)
            photo, index = running.pop(done[0])
            load[index] -= 1
            try:
                made = ray.get(done[0])
            except ray.exceptions.RayError as error:  # the actor died more than MAX_RESTARTS times
                made = f"its Ray actor was lost {MAX_RESTARTS + 1} times ({type(error).__name__}); run again to retry"
            result = (
                Result(photo, "failed", made)
                if isinstance(made, str)
                else encode.write_outputs(photo, out_dir, made, force=force)
            )
            results[photo] = result
            bar.update(1)
            bar.set_postfix_str(photo.name[:40])
            encode.report(result, progress)
    finally:
        bar.close()
        for actor in pool:
            ray.kill(actor)
    return [results[p] for p in photos]


def check(photo: Path, out_dir: Path, model_name: str, force: bool) -> Result | None:
    """For a photo whose bundle is in --out already: skipped, refused, or None (to be encoded)."""
    try:
        sha256 = hashlib.sha256(photo.read_bytes()).hexdigest()
    except OSError as error:
        return Result(photo, "failed", f"cannot read {photo}: {error.strerror or error}")
    return encode.refusal(photo, out_dir / f"{photo.name}.msgpack", model_name, sha256, force)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
