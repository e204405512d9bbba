"""The FastAPI application: routes, the limits every request passes, and the service state they share."""
from __future__ import annotations

import asyncio
import re
import secrets
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic.json_schema import models_json_schema

import edgeopt
from edgeopt import io, registry
from edgeopt.compare import add_gaps, solve_row
from edgeopt.errors import InputError
from edgeopt.model import pydantic_error
from edgeopt.serve import models
from edgeopt.serve.bridge import DaskBridge, PoolBridge, Work
from edgeopt.serve.metrics import CONTENT_TYPE, Metrics, RequestMetrics
from edgeopt.serve.store import Store
from edgeopt.solvers import available_solvers

RETRY_AFTER_S = 1  # a full queue's answer: no estimate of a solver's remaining time is reliable; clients back off
ROWS_LIMIT = 1000  # rows per GET /jobs/{id} by default (``limit`` up to ROWS_MAX)
ROWS_MAX = 10_000
INLINE_BYTES = 64 * 1024  # a body up to this size is parsed in the event loop (a thread per small body only
#                           adds contention for the GIL); a larger one in a thread, so that the loop stays free
INTERRUPTED = "the service stopped before the job finished; its finished rows are kept (submit it again for the rest)"


@dataclass
class Settings:
    """What ``edgeopt serve`` was started with (checked by the command line)."""

    host: str = "127.0.0.1"
    port: int = 8000
    jobs: int = 1
    scheduler: str | None = None
    store: Path = Path("edgeopt-serve.sqlite")
    token: str | None = None
    max_body: int = 16 * 2**20  # bytes, inflated or not
    max_time_limit: float = 600.0
    queue: int = 100


@dataclass(eq=False)
class _Job:
    """A job that is queued or running in this process."""

    id: str
    work: Work
    extras: list[dict]  # per task: the row's extra fields (an experiment's label and grid point)
    running: dict[int, dict] = field(default_factory=dict)  # task index -> started, bound
    done: int = 0  # rows stored
    task: asyncio.Task | None = None


class Service:
    """What the routes share: the settings, the executor (Pool or Dask), the job store and the one thread that
    touches it, the metrics, and the work held now."""

    def __init__(self, settings: Settings):
        """Open the store (unfinished jobs there become ``interrupted``), then start the workers or connect to
        Dask; an InputError or ClusterLost when either cannot be had."""
        self.settings = settings
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="edgeopt-store")
        try:
            self.store = self._store_thread.submit(Store, settings.store).result()
            self.interrupted = self._store_thread.submit(self.store.interrupt_unfinished, INTERRUPTED).result()
            self.bridge = DaskBridge(settings.scheduler) if settings.scheduler else PoolBridge(settings.jobs)
        except BaseException:
            if hasattr(self, "store"):
                self._store_thread.submit(self.store.close).result()
            self._store_thread.shutdown()
            raise
        self.metrics = Metrics()
        self.in_flight = 0  # synchronous solves and jobs admitted and not finished (--queue bounds it)
        self.jobs: dict[str, _Job] = {}
        self.solves: set[Work] = set()
        self._cache: dict[str, Any] = {}

    async def db(self, fn, *args):
        """``fn(*args)`` in the store's thread: the event loop never waits on the disk."""
        return await asyncio.get_running_loop().run_in_executor(self._store_thread, fn, *args)

    # --- work ---

    def _row(self, result, extra: dict) -> dict:
        row = {**solve_row(result), **extra}
        self.metrics.finished(row)
        return row

    async def solve(self, items: list, request: Request) -> list[dict]:
        """Run the tasks and answer with their rows, in order; a client that goes away cancels them."""
        work = Work([task for task, _ in items])
        self.solves.add(work)
        self.bridge.add(work)
        watcher = asyncio.create_task(_on_disconnect(request, work))
        rows: list[dict | None] = [None] * len(items)
        left, why = len(rows), "shutdown"
        try:
            while left:
                index, what = await work.events.get()
                if index is None:  # the client went away, the service is stopping, or its executor is lost
                    why = {_GONE: "client gone", _STOPPING: "shutdown"}.get(what, "executor lost")
                    raise HTTPException(499 if what == _GONE else 503, what)
                if what.kind == "done":
                    rows[index] = orjson.loads(io.dumps(self._row(what.result, items[index][1]), indent=False))
                    left -= 1
        finally:
            watcher.cancel()
            self.solves.discard(work)
            if left:
                self.bridge.cancel(work)
                self.metrics.cancelled[why] += left
        return rows

    async def submit(self, req, slot: _Slot) -> str:
        items = req.work()
        job_id = uuid.uuid4().hex
        reference = {"solve": None, "compare": "auto"}[req.kind] if req.kind != "experiment" else \
            req.experiment.reference  # what compare's and experiment's gaps are to
        await self.db(self.store.create, job_id, req.kind, len(items), reference)
        job = self.jobs[job_id] = _Job(job_id, Work([task for task, _ in items]), [extra for _, extra in items])
        slot.kept = True  # the job holds its place in the queue until it ends (_run)
        job.task = asyncio.create_task(self._run(job))
        return job_id

    async def _run(self, job: _Job) -> None:
        self.bridge.add(job.work)
        try:
            while job.done < len(job.work.tasks):
                index, what = await job.work.events.get()
                if index is None:  # the executor is lost (the worker pool, or the Dask scheduler)
                    self.bridge.cancel(job.work)
                    await self.db(self.store.end, job.id, "failed", what)
                    return
                if what.kind == "started":
                    if not job.running and not job.done:  # its first method started: the job runs
                        await self.db(self.store.started, job.id)
                    job.running[index] = {"started": _utc(time.time()), "bound": None}
                elif what.kind == "progress":
                    if index in job.running:
                        job.running[index]["bound"] = what.progress.bound
                else:
                    job.running.pop(index, None)
                    row = self._row(what.result, job.extras[index])
                    await self.db(self.store.add_row, job.id, index, io.dumps(row, indent=False))
                    job.done += 1
            await self.db(self.store.end, job.id, "done")
        except asyncio.CancelledError:
            self.bridge.cancel(job.work)
            raise
        finally:
            del self.jobs[job.id]
            self.in_flight -= 1

    async def cancel(self, job_id: str) -> None:
        """Stop a queued or running job: its workers are killed, its finished rows kept."""
        job = self.jobs.get(job_id)
        if job is None:
            return
        job.task.cancel()
        done = await asyncio.gather(job.task, return_exceptions=True)
        if isinstance(done[0], asyncio.CancelledError):
            self.metrics.cancelled["deleted"] += len(job.work.tasks) - job.done
            await self.db(self.store.end, job_id, "cancelled", "cancelled by DELETE: its running methods were "
                                                              "stopped; its finished rows are kept")

    async def view(self, job_id: str, offset: int = 0, limit: int = ROWS_LIMIT) -> dict:
        job = self.jobs.get(job_id)
        running = [] if job is None else [{"index": k, **r} for k, r in sorted(job.running.items())]
        found = await self.db(_view, self.store, job_id, offset, limit)
        if found is None:
            raise HTTPException(404, f"no job {job_id!r} in this service's store")
        found["running"] = [{"instance": job.work.tasks[r["index"]].instance.name,
                             "method": job.work.tasks[r["index"]].method, "started": r["started"],
                             "bound": r["bound"]} for r in running]
        return found

    def stopping(self) -> None:
        """SIGINT or SIGTERM: the synchronous solves end now (503), so that the server can close their connections."""
        for work in list(self.solves):
            work.events.put_nowait((None, _STOPPING))

    async def shutdown(self) -> None:
        """Jobs stopped and marked ``interrupted`` (with their finished rows), workers killed, store closed."""
        for job in list(self.jobs.values()):
            job.task.cancel()
        await asyncio.gather(*(job.task for job in list(self.jobs.values())), return_exceptions=True)
        await self.bridge.close()
        n = await self.db(self.store.interrupt_unfinished, INTERRUPTED)
        await self.db(self.store.close)
        self._store_thread.shutdown()
        print(f"edgeopt serve: stopped; {_jobs(n)} marked interrupted", file=sys.stderr)

    async def cached(self, key: str, make) -> Any:
        if key not in self._cache:
            self._cache[key] = await run_in_threadpool(make)
        return self._cache[key]


_GONE = "the client went away; its work was cancelled"
_STOPPING = "the service is shutting down"


async def _on_disconnect(request: Request, work: Work) -> None:
    """Wait until the client of a synchronous solve goes away, then tell the solve."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    work.events.put_nowait((None, _GONE))


def _jobs(n: int) -> str:
    return f"{n} unfinished job{'s' * (n != 1)}"


def _utc(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc)


def _view(store: Store, job_id: str, offset: int, limit: int) -> dict | None:
    """A job's record and a page of its rows, gaps filled in over all of them (in the store's thread)."""
    job = store.job(job_id)
    if job is None:
        return None
    rows = [orjson.loads(blob) for blob in store.rows(job_id)]
    if job["reference"]:
        add_gaps(rows, job["reference"])
    return {"id": job["id"], "kind": job["kind"], "status": job["status"], "message": job["message"],
            "progress": {"done": job["done"], "total": job["total"]}, "created": _utc(job["created"]),
            "started": _utc(job["started"]), "finished": _utc(job["finished"]), "offset": offset,
            "rows": rows[offset:offset + limit]}


# --- the limits: dependencies every route declares once ----------------------------------------------

def service(request: Request) -> Service:
    return request.app.state.service


bearer = HTTPBearer(auto_error=False, description="the token of --token-file (required beyond loopback)")


def authorized(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
    """The bearer token, compared in constant time (``secrets.compare_digest``)."""
    token = service(request).settings.token
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "needs the service's bearer token (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})


@dataclass
class _Slot:
    kept: bool = False  # a job keeps its slot until it ends


async def admitted(request: Request) -> AsyncIterator[_Slot]:
    """A place among the --queue solves and jobs held at once; none left: 429 with Retry-After."""
    svc = service(request)
    if svc.in_flight >= svc.settings.queue:
        raise HTTPException(429, f"the service holds {svc.in_flight} solves and jobs, its limit (--queue); "
                                 f"try again later", headers={"Retry-After": str(RETRY_AFTER_S)})
    svc.in_flight += 1
    slot = _Slot()
    try:
        yield slot
    finally:
        if not slot.kept:
            svc.in_flight -= 1


async def _body(request: Request, cap: int) -> bytes:
    """The request body, refused with 413 beyond ``cap`` bytes before any of it is parsed: by its
    Content-Length, then by the bytes that arrive, then (gzip) by what it inflates to."""
    mb = f"{cap / 2**20:g} MB"
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        raise HTTPException(413, f"the request body holds {int(length):,} bytes, more than the limit of {mb} "
                                 "(--max-body)")
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > cap:
            raise HTTPException(413, f"the request body is more than the limit of {mb} (--max-body)")
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        raw = io.gunzip(raw, cap, "body")
        if len(raw) > cap:
            raise HTTPException(413, f"the request body inflates to more than the limit of {mb} (--max-body)")
    elif encoding not in ("identity", ""):
        raise HTTPException(415, f"Content-Encoding must be gzip or identity, got {encoding[:40]!r}")
    return raw


def body(model):
    """The dependency that reads a request body of ``model``: size and gzip limits first, then the JSON parsed
    and validated (beyond INLINE_BYTES in a thread: a large instance does not hold the event loop); faults are
    InputErrors (422)."""

    async def read(request: Request):
        settings = service(request).settings
        raw = await _body(request, settings.max_body)
        context = {"max_time_limit": settings.max_time_limit}
        parse = lambda: model.parse(io.parse_json(raw, "body"), context)  # noqa: E731
        return parse() if len(raw) <= INLINE_BYTES else await run_in_threadpool(parse)

    return read


def _openapi_body(model) -> dict:
    """The request body a ``body(model)`` route documents (the schema is added in ``create_app``'s openapi)."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "description": "JSON; Content-Encoding: gzip is accepted",
                            "content": {"application/json": {"schema": schema}}}}


REQUESTS = (models.SolveRequest, models.JobRequest, models.ValidateRequest)
_FAULTS = {422: {"model": models.Invalid, "description": "bad input: the command line's field path and rule"}}
_BODY = {**_FAULTS, 413: {"model": models.Message, "description": "the body is over --max-body"},
         415: {"model": models.Message, "description": "a Content-Encoding other than gzip"}}
_QUEUE = {429: {"model": models.Message, "description": "--queue solves and jobs are held; see Retry-After",
                "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}}}
_NO_JOB = {404: {"model": models.Message, "description": "no such job"}, **_FAULTS}


def _loc(path: str) -> list[str | int]:
    return [int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"\[\d+\]|[^.\[\]]+", path)]


def _invalid(errors: list[InputError], where: str) -> JSONResponse:
    faults = [{"loc": [where, *_loc(e.path)] if e.path != where else [where], "msg": e.rule, "type": "value_error",
               "path": e.path} for e in errors]
    return JSONResponse({"detail": faults}, status_code=422)


# --- the application ----------------------------------------------------------------------------------

def create_app(svc: Service) -> FastAPI:
    """The ASGI application over a Service (its workers, store and limits)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        svc.bridge.loop = asyncio.get_running_loop()
        s = svc.settings
        where = (f"{svc.bridge.jobs} worker process{'es' * (svc.bridge.jobs != 1)}" if svc.bridge.executor == "local"
                 else f"the Dask cluster at {s.scheduler}")
        print(f"edgeopt serve: listening on http://{s.host}:{s.port} ({where}, store {s.store}"
              + (f", {_jobs(svc.interrupted)} marked interrupted" if svc.interrupted else "") + ")",
              file=sys.stderr, flush=True)
        yield
        await svc.shutdown()

    app = FastAPI(title="edgeopt", version=edgeopt.__version__, lifespan=lifespan,
                  description="edgeopt's problems, methods and referee over HTTP/JSON: `edgeopt serve` (README, "
                              "Service). Instances and experiments are the files' JSON; rows are `solve --json`'s.")
    app.state.service = svc
    app.add_middleware(RequestMetrics, metrics=svc.metrics)

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError):
        return _invalid([exc], "body")

    @app.exception_handler(405)
    async def _method_not_allowed(request: Request, exc: HTTPException):
        """``Allow`` lists every method of the path (Starlette names only the first route's)."""
        allowed = sorted({m for r in app.routes if getattr(r, "path_regex", None) and
                          r.path_regex.match(request.url.path) for m in getattr(r, "methods", ())})
        return JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": ", ".join(allowed)})

    @app.exception_handler(RequestValidationError)
    async def _param_error(request: Request, exc: RequestValidationError):
        errors = [pydantic_error({**e, "loc": e["loc"][1:]}, given=True) for e in exc.errors()[:1]]
        return _invalid(errors, exc.errors()[0]["loc"][0])

    guard = [Depends(authorized)] if svc.settings.token else []
    api = APIRouter(dependencies=guard, responses={401: {"model": models.Message}} if guard else {})
    open_ = APIRouter()

    @api.get("/problems", response_model=models.Listing)
    async def problems():
        """Problems, their methods (kind, one sentence and the whole description) and presets, importers, solvers:
        `edgeopt list --json`."""
        return await svc.cached("listing", lambda: registry.listing(available_solvers()))

    @api.get("/problems/{problem}/schema", responses={404: {"model": models.Message}, **_FAULTS})
    async def problem_schema(problem: str) -> dict[str, Any]:
        """The JSON Schema of an instance file of the problem: `edgeopt schema <id>`."""
        if problem not in registry.problems():
            raise HTTPException(404, f"no problem {problem[:40]!r}; GET /problems lists them")
        return await svc.cached(f"schema {problem}", lambda: io.schema(problem))

    @api.post("/validate", response_model=models.Validated, responses=_BODY,
              openapi_extra=_openapi_body(models.ValidateRequest))
    async def validate(req=Depends(body(models.ValidateRequest))):
        """Check an instance and, with solutions, have the referee judge each: `edgeopt validate --json`."""
        prob = registry.problem(req.instance.problem)

        def verdicts():
            return [{"method": method, **vars(prob.evaluate(req.instance, sol))} for method, sol in req.solutions()]

        return {"problem": prob.id, "instance": req.instance.name, "valid": True,
                "verdicts": orjson.loads(io.dumps(await run_in_threadpool(verdicts), indent=False))}

    @api.post("/solve", response_model=list[models.Row], responses={**_BODY, **_QUEUE,
              503: {"model": models.Message, "description": "the service is shutting down, or lost its workers"}},
              openapi_extra=_openapi_body(models.SolveRequest))
    async def solve(request: Request, slot=Depends(admitted), req=Depends(body(models.SolveRequest))):
        """Methods on one instance, answered when all are done: the rows of `edgeopt solve --json`, in order."""
        return await svc.solve(req.work(), request)

    @api.post("/jobs", status_code=202, response_model=models.JobState, responses={**_BODY, **_QUEUE},
              openapi_extra=_openapi_body(models.JobRequest))
    async def submit(response: Response, slot=Depends(admitted), req=Depends(body(models.JobRequest))):
        """Start a job (solve or compare on instances, or an experiment) and answer at once with its id."""
        job_id = await svc.submit(req, slot)
        response.headers["Location"] = f"/jobs/{job_id}"
        return await svc.view(job_id)

    @api.get("/jobs/{job_id}", response_model=models.JobState, responses=_NO_JOB)
    async def job(job_id: str, offset: int = Query(0, ge=0, le=10**9, description="the first row to show"),
                  limit: int = Query(ROWS_LIMIT, ge=1, le=ROWS_MAX, description="rows to show at most")):
        """A job's status, progress and rows so far (in the order they finished; gaps over all of them)."""
        return await svc.view(job_id, offset, limit)

    @api.delete("/jobs/{job_id}", response_model=models.JobState, responses=_NO_JOB)
    async def cancel(job_id: str):
        """Cancel a queued or running job (its workers are killed, as Ctrl-C does); a finished job is left as
        it is. Answers with the job."""
        await svc.cancel(job_id)
        return await svc.view(job_id)

    @api.get("/metrics", response_class=PlainTextResponse,
             responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}}})
    async def metrics():
        """Prometheus text format: requests, method runs and their times, jobs by status, the queue."""
        jobs = await svc.db(svc.store.counts)
        gauges = {"edgeopt_in_flight": ("synchronous solves and jobs held now", svc.in_flight),
                  "edgeopt_queue_limit": ("the most held at once (--queue)", svc.settings.queue),
                  "edgeopt_workers": ("worker processes, or the Dask cluster's threads", svc.bridge.jobs)}
        return PlainTextResponse(svc.metrics.text(jobs, gauges), media_type=CONTENT_TYPE)

    @open_.get("/healthz", response_model=models.Health, responses={503: {"model": models.Message}})
    async def healthz():
        """Liveness (no token needed): the workers are there."""
        if svc.bridge.failure:
            raise HTTPException(503, svc.bridge.failure)
        return {"status": "ok", "workers": svc.bridge.jobs, "executor": svc.bridge.executor,
                "in_flight": svc.in_flight, "queue": svc.settings.queue}

    app.include_router(api)
    app.include_router(open_)

    def openapi() -> dict:
        """FastAPI's document, plus the request bodies the ``body`` dependency reads (the same models)."""
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _, defs = models_json_schema([(m, "validation") for m in REQUESTS],
                                         ref_template="#/components/schemas/{model}")
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            clash = sorted(k for k in defs["$defs"] if k in schemas and schemas[k] != defs["$defs"][k])
            if clash:  # a new model named like one of the service's own: rename the service's
                raise RuntimeError(f"request and response models share names: {clash}")
            schemas.update(defs["$defs"])
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
    return app
