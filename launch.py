"""`make run`: run what the Procfile runs, in one command.

With REDIS_URL the web process only stores and enqueues; a separate worker consumes the queue. Run
alone, as `make run` used to, every webhook was stored and never processed. So: the Procfile's release
line first (migrate, bootstrap), then with REDIS_URL the Procfile's `web` and `worker` side by side under
honcho (one terminal, Ctrl-C stops both); without it the embedded single process (gunicorn with the
in-process worker), as before. The Procfile stays the one description of the processes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PROCFILE = ROOT / "Procfile"


def procfile_lines(text: str) -> dict[str, str]:
    lines = {}
    for raw in text.splitlines():
        raw = raw.strip()
        if raw and not raw.startswith("#") and ":" in raw:
            name, command = raw.split(":", 1)
            lines[name.strip()] = command.strip()
    return lines


def plan(env: dict, procfile_text: str) -> list[list[str]]:
    """The commands `make run` runs, in order; the last one is exec'd and keeps running."""
    lines = procfile_lines(procfile_text)
    for needed in ("release", "web", "worker"):
        if needed not in lines:
            raise SystemExit(f"Procfile has no {needed!r} line")
    steps = [["sh", "-c", lines["release"]]]
    if (env.get("REDIS_URL") or "").strip():
        steps.append(["honcho", "-f", str(PROCFILE), "start", "web", "worker"])
    else:
        steps.append(["sh", "-c", "exec " + lines["web"]])
    return steps


def main() -> None:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")  # the Procfile's gunicorn/dramatiq/flask: ours
    *first, last = plan(env, PROCFILE.read_text())
    for step in first:
        subprocess.run(step, cwd=ROOT, env=env, check=True)
    mode = "web + worker (Redis broker, via honcho)" if len(last) > 3 else "one process (embedded worker)"
    print(f"  Starting {mode}", flush=True)
    os.chdir(ROOT)
    os.execvpe(last[0], last, env)


if __name__ == "__main__":
    main()
