"""An encode service for teams: photos in over HTTP, the bundles tools/encode.py would write out.

    python tools/encode_service.py --model DIR [--host 127.0.0.1] [--port 8765] [--max-bytes N]
                                   [--max-pixels N] [--max-jobs N] [--timeout S] [--upload-timeout S]
                                   [--allow-origin ORIGIN]... [--web-encoder] [--provider auto|cpu|cuda|coreml|NAME]

One machine with the model (a GPU, or just a fast CPU) encodes for everyone: a samtab page on any origin
POSTs a photo and gets back its bundle, byte for byte the one `samtab-encode` writes for the same photo and
model (float16), so the page segments at once instead of encoding in the tab. One onnxruntime session,
created when the service starts (a broken model fails there, not at the first photo), serves all requests.

Routes:
    GET  /health   200 JSON {"ok": true, "model": NAME, "encoder": FILE, "jobs": RUNNING, "max_jobs": N,
                   "max_bytes": N, "max_pixels": N}
    POST /encode   the request body is the photo file's bytes (any Content-Type; no form); `?name=FILE` is
                   used only in messages. 200 application/msgpack: the bundle, with the headers
                   X-Samtab-Model (the model's name, percent-encoded as UTF-8: decodeURIComponent reads it),
                   X-Samtab-Sha256 (the photo's sha256, as the bundle records it) and X-Samtab-Encode-Ms.
Every refusal is JSON {"error": MESSAGE}, the message saying what is wrong and what to do:
    408  the photo took longer than --upload-timeout to arrive
    413  the photo has more than --max-bytes bytes (from Content-Length, or counted as it arrives)
    422  the body is empty, not an image, damaged, cut short, or has more than --max-pixels pixels
    503  all --max-jobs encode slots are busy, or the encode took longer than --timeout (with Retry-After)
    500  the encoder failed on this photo
A job holds its slot from the start of its upload until its encode ends, so memory stays within about
--max-jobs x (--max-bytes + the encode's own): a busy service refuses at once, it never queues. An encode
past --timeout is answered 503 at once, but it cannot be stopped: its slot is freed when it ends.

CORS: any origin may use the service (or only each --allow-origin), and every response carries
Cross-Origin-Resource-Policy: cross-origin, as a cross-origin isolated page (COEP require-corp) needs.
The service has no authentication: expose it only to the people it is for (it listens on 127.0.0.1 unless
--host says otherwise). --port 0 picks a free port; the line printed at the start gives the URL. Ctrl+C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pyapp import bundle as bundles
from pyapp import contract
from pyapp import image as images
from pyapp.model import ModelError
from pyapp.stopwatch import Stopwatch
from samtab_tools.encode import WEB_ENCODER_HELP, Encoder, UsageError, choose_provider, photo_bundle
from samtab_tools.modelio import read_model_folder

DEFAULT_PORT = 8765
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_JOBS = 2
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_UPLOAD_TIMEOUT_S = 60.0
BUNDLE_DTYPE = "float16"  # what samtab-encode writes by default, and what the page keeps
EXPOSED_HEADERS = ("X-Samtab-Model", "X-Samtab-Sha256", "X-Samtab-Encode-Ms")
# Header values are Latin-1 on the wire; printable ASCII other than % passes as is.
HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")

log = logging.getLogger("uvicorn.error")  # uvicorn prints it, in its own format


class ServiceError(Exception):
    """The service cannot start; the message says why and what to do."""


class Refusal(Exception):
    """A request the service answers with an error: an HTTP status and a message for the person."""

    def __init__(self, status: int, message: str, retry_after: int | None = None, *, close: bool = False):
        super().__init__(message)
        self.status, self.message, self.retry_after, self.close = status, message, retry_after, close

    def response(self) -> JSONResponse:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.close:
            headers["Connection"] = "close"
        return JSONResponse({"error": self.message}, status_code=self.status, headers=headers)


class JobSlots:
    """At most `limit` jobs at once: a job past it is refused, never queued. Thread-safe, because a slot taken
    on the event loop is given back by the worker thread whose encode ends (perhaps after its request gave up)."""

    def __init__(self, limit: int):
        self.limit, self.running = limit, 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.running >= self.limit:
                return False
            self.running += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.running -= 1


@dataclass(frozen=True)
class Encoded:
    bundle: bytes
    sha256: str
    encode_ms: float


class EncodeService:
    """The service's state: one loaded encoder shared by all requests, its limits, its job slots, and the
    threads its encodes run in (off the event loop, so /health answers while they run)."""

    def __init__(
        self,
        encoder: Encoder,
        *,
        max_bytes: int,
        max_pixels: int,
        max_jobs: int,
        timeout_s: float,
        upload_timeout_s: float,
    ):
        self.encoder = encoder
        self.max_bytes, self.max_pixels = max_bytes, max_pixels
        self.timeout_s, self.upload_timeout_s = timeout_s, upload_timeout_s
        self.slots = JobSlots(max_jobs)
        self.recent_encode_s = 1.0  # the last encode's time: what Retry-After suggests waiting
        # As many threads as slots: a job that holds a slot never waits for a thread. (Threads start on demand.)
        self.threads = ThreadPoolExecutor(max_workers=max_jobs, thread_name_prefix="encode")

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette):
        try:
            yield
        finally:  # an encode still running cannot be stopped; it ends on its own, as the process does
            self.threads.shutdown(wait=False, cancel_futures=True)

    async def health(self, request: Request) -> Response:
        return JSONResponse(
            {
                "ok": True,
                "model": self.encoder.info.name,
                "encoder": self.encoder.info.files[self.encoder.part],
                "jobs": self.slots.running,
                "max_jobs": self.slots.limit,
                "max_bytes": self.max_bytes,
                "max_pixels": self.max_pixels,
            }
        )

    async def encode(self, request: Request) -> Response:
        label = (request.query_params.get("name") or "the upload")[:200]
        try:
            return await self.encode_request(request, label)
        except Refusal as refusal:
            if refusal.status >= 500:
                log.warning("encode %s: %s", label, refusal.message)
            return refusal.response()
        except ClientDisconnect:
            log.info("encode %s: the client went away before its photo had arrived", label)
            return Response(status_code=400)  # nobody is left to read it

    async def encode_request(self, request: Request, label: str) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit():
            self.check_size(int(declared), label)
            if int(declared) == 0:
                raise Refusal(422, empty(label))
        if not self.slots.take():
            raise Refusal(
                503,
                f"the encode service is busy: all {self.slots.limit} of its encode slots are taken; "
                "try again in a few seconds",
                self.retry_after(),
            )
        submitted = False
        try:
            try:
                async with asyncio.timeout(self.upload_timeout_s):
                    data = await self.read_body(request, label)
            except TimeoutError:
                raise Refusal(
                    408,
                    f"{label} took longer than {self.upload_timeout_s:g} s to arrive (the service's upload "
                    "timeout); try again on a faster connection, or with a smaller file",
                    close=True,  # the rest of a stalled upload is not worth waiting for
                ) from None
            if not data:
                raise Refusal(422, empty(label))
            job = self.threads.submit(self.run_job, data, label)
            job.add_done_callback(lambda _: self.slots.give_back())  # when the encode ends, in time or not
            submitted = True
            try:
                async with asyncio.timeout(self.timeout_s):
                    encoded = await asyncio.wrap_future(job)
            except TimeoutError:
                raise Refusal(
                    503,
                    f"encoding {label} took longer than the service's limit of {self.timeout_s:g} s; try again "
                    "when the service is less busy, or with a smaller photo",
                    self.retry_after(),
                ) from None
        finally:
            if not submitted:
                self.slots.give_back()
        return Response(
            encoded.bundle,
            media_type="application/msgpack",
            headers={
                "X-Samtab-Model": quote(self.encoder.info.name, safe=HEADER_SAFE),
                "X-Samtab-Sha256": encoded.sha256,
                "X-Samtab-Encode-Ms": str(round(encoded.encode_ms)),
            },
        )

    def check_size(self, size: int, label: str, *, counted: bool = False) -> None:
        if size > self.max_bytes:
            amount = f"more than {self.max_bytes:,} bytes" if counted else f"{size:,} bytes"
            raise Refusal(
                413,
                f"{label} is {amount}, over the encode service's limit of {self.max_bytes:,} bytes; "
                "scale it down or save it as a JPEG, or ask whoever runs the service to raise --max-bytes",
            )

    async def read_body(self, request: Request, label: str) -> bytes:
        """The request body, read no further than max_bytes (a chunked upload has no Content-Length to check
        first). Raises ClientDisconnect if the client goes away first."""
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            self.check_size(len(body), label, counted=True)
        return bytes(body)

    def run_job(self, data: bytes, label: str) -> Encoded:
        """In a worker thread: the photo's bundle, as tools/encode.py makes it."""
        clock = Stopwatch()
        try:
            opened = images.open_photo(data, name=label, max_pixels=self.max_pixels)
        except images.PhotoError as error:
            raise Refusal(422, str(error)) from None
        try:
            embeddings = self.encoder.run(images.encoder_input(opened.rgb))
            bundle = photo_bundle(opened, embeddings, model_name=self.encoder.info.name, dtype=BUNDLE_DTYPE)
        except bundles.BundleError as error:
            raise Refusal(500, f"the encoder failed on {label}: {error}") from None
        except Exception as error:  # noqa: BLE001 - onnxruntime's errors share no base class; the client must hear
            log.exception("encode %s: the encoder failed", label)
            raise Refusal(500, f"the encoder failed on {label} ({type(error).__name__}: {error})") from None
        elapsed = clock.total()
        self.recent_encode_s = elapsed / 1000
        return Encoded(bundle, opened.sha256, elapsed)

    def retry_after(self) -> int:
        return max(1, math.ceil(self.recent_encode_s))


def empty(label: str) -> str:
    return f"{label} is empty: the request carried no bytes; send the photo file itself as the request body"


class CrossOriginResourcePolicy:
    """Cross-Origin-Resource-Policy: cross-origin on every response, so a page that is cross-origin isolated
    (COEP require-corp, as samtab's is) may load what the service answers."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_corp(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"cross-origin-resource-policy", b"cross-origin")]
            await send(message)

        await self.app(scope, receive, send_with_corp)


def load_encoder(model_dir: Path, *, web_encoder: bool, provider: str) -> Encoder:
    """The model folder's encoder, loaded. Raises FileNotFoundError, ModelError, UsageError or ServiceError,
    each with a message for the person who started the service."""
    model_dir = Path(model_dir)
    info = read_model_folder(model_dir)
    encoder = Encoder(model_dir, info, choose_provider(provider), "encoder_web" if web_encoder else "encoder")
    try:
        return encoder.load()
    except Exception as error:  # noqa: BLE001 - onnxruntime's errors share no base class but Exception
        raise ServiceError(
            f"{model_dir / info.files[encoder.part]}: onnxruntime cannot load it ({error}); "
            "make the model folder again (tools/export_sam2.py or tools/baseline_model.py)"
        ) from None


def make_app(
    model_dir: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = contract.MAX_PHOTO_PIXELS,
    max_jobs: int = DEFAULT_MAX_JOBS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    upload_timeout_s: float = DEFAULT_UPLOAD_TIMEOUT_S,
    allow_origins: list[str] | tuple[str, ...] = ("*",),
    web_encoder: bool = False,
    provider: str = "auto",
) -> Starlette:
    """The service as an ASGI application, for one run of a server (uvicorn): its worker threads stop with it.
    The encoder's session is created here, so a model that cannot be used fails now, before anything listens
    (load_encoder says with what errors). allow_origins: the page origins CORS lets in ("*": any)."""
    if min(max_bytes, max_pixels, max_jobs) < 1 or min(timeout_s, upload_timeout_s) <= 0:
        raise UsageError("max_bytes, max_pixels and max_jobs must be 1 or more, and the timeouts above 0")
    service = EncodeService(
        load_encoder(model_dir, web_encoder=web_encoder, provider=provider),
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        max_jobs=max_jobs,
        timeout_s=timeout_s,
        upload_timeout_s=upload_timeout_s,
    )
    app = Starlette(
        routes=[
            Route("/health", service.health, methods=["GET"]),
            Route("/encode", service.encode, methods=["POST"]),
        ],
        middleware=[
            Middleware(CrossOriginResourcePolicy),  # outermost: preflight answers carry it too
            Middleware(
                CORSMiddleware,
                allow_origins=list(allow_origins),
                allow_methods=["POST", "GET", "OPTIONS"],
                allow_headers=["Content-Type"],
                expose_headers=list(EXPOSED_HEADERS),
                # A public page may call a service on the person's own network (Chrome asks first).
                allow_private_network=True,
            ),
        ],
        lifespan=service.lifespan,
    )
    app.state.service = service
    return app


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port (port 0: a free one); ServiceError with what to do if it cannot."""
    try:
        return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as error:
        raise ServiceError(
            f"cannot listen on {host}:{port} ({error.strerror or error}); choose another --port (or --host)"
        ) from None


@contextlib.contextmanager
def running(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
    """Serve an ASGI app (make_app's, or one that wraps it) with uvicorn in a background thread, for tests and
    for programs that embed the service: yields the port it listens on (port 0: a free one), and stops the
    server when the block ends. Raises ServiceError if it cannot listen there or the app does not start."""
    import uvicorn

    with listen(host, port) as listener:
        server = uvicorn.Server(uvicorn.Config(app, log_level=log_level))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="encode-service", daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise ServiceError(f"the encode service did not start on {host}:{port} (uvicorn's log says why)")
            time.sleep(0.01)
        try:
            yield listener.getsockname()[1]
        finally:
            server.should_exit = True
            thread.join()


def positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r}: must be above 0")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="a model folder (with model.json)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1; 0.0.0.0 for everyone)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--max-bytes",
        type=positive(int),
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"the largest photo file accepted, in bytes (default {DEFAULT_MAX_BYTES:,}: 64 MiB)",
    )
    parser.add_argument(
        "--max-pixels",
        type=positive(int),
        default=contract.MAX_PHOTO_PIXELS,
        metavar="N",
        help=f"the most pixels a photo may have (default {contract.MAX_PHOTO_PIXELS:,}, samtab's own cap)",
    )
    parser.add_argument(
        "--max-jobs",
        type=positive(int),
        default=DEFAULT_MAX_JOBS,
        metavar="N",
        help=f"photos uploaded or encoded at once; more are refused with 503 (default {DEFAULT_MAX_JOBS})",
    )
    parser.add_argument(
        "--timeout",
        type=positive(float),
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"seconds an encode may take before its client gets a 503 (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--upload-timeout",
        type=positive(float),
        default=DEFAULT_UPLOAD_TIMEOUT_S,
        metavar="S",
        help=f"seconds a photo may take to arrive before a 408 (default {DEFAULT_UPLOAD_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        metavar="ORIGIN",
        help="a page origin allowed to use the service, e.g. https://samtab.example (repeatable; default: any)",
    )
    parser.add_argument(
        "--web-encoder",
        action="store_true",
        help=WEB_ENCODER_HELP,
    )
    parser.add_argument(
        "--provider",
        default="auto",
        help="onnxruntime execution provider: auto (default), cpu, cuda, coreml or a full name",
    )
    args = parser.parse_args(argv)
    try:
        app = make_app(
            args.model,
            max_bytes=args.max_bytes,
            max_pixels=args.max_pixels,
            max_jobs=args.max_jobs,
            timeout_s=args.timeout,
            upload_timeout_s=args.upload_timeout,
            allow_origins=args.allow_origin or ["*"],
            web_encoder=args.web_encoder,
            provider=args.provider,
        )
    except (UsageError, FileNotFoundError, ModelError, ServiceError) as error:
        print(f"encode_service: error: {error}", file=sys.stderr)
        return 2
    import uvicorn

    try:
        listener = listen(args.host, args.port)
    except ServiceError as error:
        print(f"encode_service: error: {error}", file=sys.stderr)
        return 1
    encoder = app.state.service.encoder
    url = f"http://{f'[{args.host}]' if ':' in args.host else args.host}:{listener.getsockname()[1]}"
    print(
        f"encode_service: {encoder.info.name} ({encoder.info.files[encoder.part]}, {encoder.provider}) at {url}: "
        f"POST photos to {url}/encode, GET {url}/health; origins allowed: {', '.join(args.allow_origin or ['any'])}",
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="info"))
    with listener:
        try:
            server.run(sockets=[listener])
        except KeyboardInterrupt:  # uvicorn stops gracefully on Ctrl+C, then raises it again
            pass
    if not server.started:
        return 1  # uvicorn said why
    print("encode_service: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
