"""Static client code of the app, served by trame (``server.enable_module``)."""

from pathlib import Path

BASE_URL = "breast_subtype_web"
serve = {BASE_URL: str(Path(__file__).with_name("serve").resolve())}
scripts = [f"{BASE_URL}/upload.js"]
