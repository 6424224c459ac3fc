"""Offscreen VTK rendering for a server with no display.

The VTK wheel picks its OpenGL window class at run time from ``VTK_DEFAULT_OPENGL_WINDOW``. With no X
display the X window class cannot open, so we choose OSMesa (software, no GPU or device node needed);
EGL works too and can be chosen by setting the variable before starting.
"""

from __future__ import annotations

import os

OFFSCREEN_WINDOW = "vtkOSOpenGLRenderWindow"


def configure_offscreen_rendering(environ: dict | None = None) -> str:
    """Set the VTK window class unless the user already chose one; return the class in use.

    Must run before the first VTK render window is created (importing vtk is fine).
    """
    environ = os.environ if environ is None else environ
    if not environ.get("VTK_DEFAULT_OPENGL_WINDOW") and not environ.get("DISPLAY"):
        environ["VTK_DEFAULT_OPENGL_WINDOW"] = OFFSCREEN_WINDOW
    return environ.get("VTK_DEFAULT_OPENGL_WINDOW", "vtkXOpenGLRenderWindow")
