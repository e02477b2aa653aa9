"""`make run` runs what the Procfile runs (issue 9 §3): with REDIS_URL both web and worker."""
from pathlib import Path

from launch import PROCFILE, plan, procfile_lines

PROCFILE_TEXT = Path(PROCFILE).read_text()


def test_with_redis_web_and_worker_run_after_the_release_step():
    """Web alone on the Redis broker stored every webhook and processed none."""
    steps = plan({"REDIS_URL": "redis://127.0.0.1:6379/0"}, PROCFILE_TEXT)
    assert steps[0] == ["sh", "-c", procfile_lines(PROCFILE_TEXT)["release"]]
    assert steps[-1][-3:] == ["start", "web", "worker"] and steps[-1][0] == "honcho"
    assert len(steps) == 2


def test_without_redis_it_is_the_embedded_single_process():
    steps = plan({"REDIS_URL": "  "}, PROCFILE_TEXT)
    assert steps[0][2] == procfile_lines(PROCFILE_TEXT)["release"]
    assert steps[-1] == ["sh", "-c", "exec " + procfile_lines(PROCFILE_TEXT)["web"]]


def test_the_procfile_is_the_one_description():
    lines = procfile_lines(PROCFILE_TEXT)
    assert set(lines) == {"release", "web", "worker"}
    assert "db upgrade" in lines["release"] and lines["web"].startswith("gunicorn ") and lines["worker"].startswith("dramatiq ")
