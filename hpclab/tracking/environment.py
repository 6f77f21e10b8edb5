"""Environment capture: interpreter, platform, packages, GPUs, Slurm and environment variables.

Written to ``snapshot/environment.json`` (plus ``requirements.txt``) at run start. The
store is shared and the site publishes it, so nothing secret may land here: values of
variables whose names look secret are replaced by ``"<redacted>"``, and passwords in
URLs (``scheme://user:pass@host``) are cut out of every value.

Capture must cost well under half a second: package versions are read from the
``METADATA`` header lines without the (slow) email parser, torch is consulted only if
the program already imported it, and ``nvidia-smi`` gets a 5 s timeout.

Values are also redacted by their shape, with the code snapshot's scanner
(:func:`hpclab.tracking.secrets.redact_env_value`): a ``ghp_…`` token or a private key in
``MY_VAR`` becomes ``"<redacted>"`` too.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from hpclab.store.atomic import write_bytes_atomic, write_json_atomic
from hpclab.store.layout import RunPaths
from hpclab.store.record import utcnow_iso
from hpclab.tracking.secrets import REDACTED, SECRET_NAME_RE, redact_env_value, redact_url

__all__ = ["REDACTED", "SECRET_NAME_RE", "capture_environment", "redact_environ", "redact_url"]
NVIDIA_SMI_TIMEOUT_S = 5.0


def capture_environment(paths: RunPaths) -> dict[str, Any]:
    """Describe the running interpreter and machine; write it to ``environment.json``
    and the installed packages to ``requirements.txt``. Returns what was written."""
    packages = installed_packages()
    env = {
        "captured_at": utcnow_iso(),
        "python": {
            "version": sys.version,
            "version_info": list(sys.version_info[:3]),
            "executable": sys.executable,
            "implementation": platform.python_implementation(),
        },
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "hostname": socket.gethostname(),
        },
        "packages": packages,
        "gpu": gpu_info(),
        "slurm": redact_environ({k: v for k, v in os.environ.items() if k.startswith("SLURM_")}),
        "environ": redact_environ(os.environ),
    }
    paths.snapshot_dir.mkdir(parents=True, exist_ok=True)
    requirements = "".join(f"{name}=={version}\n" for name, version in packages.items())
    write_bytes_atomic(paths.requirements_txt, requirements.encode())
    write_json_atomic(paths.environment_json, env)
    return env


def redact_environ(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env``, sorted by name, safe to publish.

    Values of names containing TOKEN, KEY, SECRET, PASSWORD, PASSWD, CREDENTIAL, AUTH,
    COOKIE, SESSION or PRIVATE (any case), and values holding a token, a private key or a
    ``password=…`` assignment, become ``"<redacted>"``; in every other value, URL
    passwords are replaced (``https://u:<redacted>@host``).
    """
    return {name: redact_env_value(name, value) for name, value in sorted(env.items())}


def installed_packages() -> dict[str, str]:
    """Distribution name -> version of every installed package, sorted by name.

    When one name is installed twice on ``sys.path``, the first wins, as for imports.
    """
    found: dict[str, tuple[str, str]] = {}
    for dist in importlib.metadata.distributions():
        name, version = _name_version(dist)
        if name and version and name.lower() not in found:
            found[name.lower()] = (name, version)
    return dict(pair for _, pair in sorted(found.items()))


def _name_version(dist: importlib.metadata.Distribution) -> tuple[str | None, str | None]:
    # Name and Version sit in the header block at the top; parsing the whole file with
    # the email parser costs ~10x more across a few hundred packages.
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = None
    for line in text.splitlines():
        if not line:
            break
        if line.startswith("Name:"):
            name = line[5:].strip()
        elif line.startswith("Version:"):
            version = line[8:].strip()
        if name and version:
            break
    return name, version


def gpu_info() -> dict[str, Any] | None:
    """GPUs as torch sees them if torch is already imported, else from ``nvidia-smi``,
    else None. Importing torch here would cost seconds and initialise CUDA behind the
    user's back, so it is never imported."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            available = bool(torch.cuda.is_available())
            count = int(torch.cuda.device_count()) if available else 0
            return {
                "source": "torch",
                "torch_version": str(torch.__version__),
                "cuda_available": available,
                "cuda_version": getattr(torch.version, "cuda", None),
                "device_count": count,
                "devices": [str(torch.cuda.get_device_name(i)) for i in range(count)],
            }
        except Exception as e:  # a broken CUDA setup must not stop the run
            return {"source": "torch", "error": f"{type(e).__name__}: {e}"}
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    return _nvidia_smi(smi)


def _nvidia_smi(smi: str) -> dict[str, Any]:
    cmd = [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"source": "nvidia-smi", "error": f"{type(e).__name__}: {e}"}
    if proc.returncode != 0:
        return {"source": "nvidia-smi", "error": proc.stderr.strip() or f"exit {proc.returncode}"}
    devices = []
    for line in proc.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            devices.append({"name": parts[0], "memory_total": parts[1], "driver_version": parts[2]})
    return {"source": "nvidia-smi", "device_count": len(devices), "devices": devices}
