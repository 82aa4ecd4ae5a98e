"""tracking's web page: type a tracking code, see the case. Works without JavaScript. (placeholder: being written)"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

router = APIRouter()


def static_files() -> StaticFiles:
    return StaticFiles(directory=Path(__file__).parent / "static")
