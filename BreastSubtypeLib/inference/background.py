"""Start slow, independent work early: importing torch and loading the model (≈1.1 s of a
whole-process ``predict``) runs on a daemon thread while SimpleITK, which releases the GIL,
reads the case on the main thread.

A daemon thread, not an executor: a bad input must exit at once with its one line, without
waiting for an import nobody needs any more.

>>> model = in_background(load_model, "demo")  # doctest: +SKIP
>>> image = read_image("case.nrrd")            # doctest: +SKIP
>>> predict(image, mask, model.result())       # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


def in_background(function: Callable[..., T], *args, name: str = "background") -> Future[T]:
    """``function(*args)`` on a daemon thread; its result (or its exception) from ``.result()``."""
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # handed to whoever waits on the result
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future
