"""Benchmarks of the pipeline (docs/benchmarks.md): each one is `python -m bench.<name>`, prints a table and
writes JSON to `bench/results/` (git-ignored).

They run the product as it is deployed — gunicorn and the Dramatiq worker started with the Procfile's
own commands, PostgreSQL and Redis, the amoCRM sandbox as separate processes — all on loopback.
`bench.harness` starts and stops that stack and sets up connected integrations; `bench.loadgen`
drives HTTP load (wrk for throughput, a Python asyncio client where an exact request count matters);
`bench.report` prints the table and stores the JSON. See docs/benchmarks.md for the method and figures.
"""
