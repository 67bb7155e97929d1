"""ASGI entry for multi-process serving (``aac serve --processes N``): each process builds its
own runtime from the environment, like ``aac serve`` does."""

from __future__ import annotations

import logging
import os

from starlette.applications import Starlette

from bot.app import create_app
from bot.jobs import job_handlers
from bot.log import configure_logging
from bot.runtime import build_runtime
from config.settings import load_settings


def create_from_environment() -> Starlette:
    """The web app with its in-process worker, configured from ``AAC_*`` variables."""
    settings = load_settings(os.environ)
    configure_logging(settings.log_level, settings.log_format)
    # `access_log=False` reaches uvicorn's worker processes pickled, without the logger
    # settings it implies; without this every request would be logged through the root logger.
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    runtime = build_runtime(settings)
    run_worker = os.environ.get("AAC_SERVE_NO_WORKER") != "1"
    return create_app(runtime, handlers=job_handlers(runtime), run_worker=run_worker)
