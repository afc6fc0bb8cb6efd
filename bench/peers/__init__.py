"""`make bench-peers`: Grey against the stack a user would build for the same job.

The job: an HTTP submit, a durable record of the task, its execution on a worker, and its
final state readable over HTTP. The peer is FastAPI + Celery, built as their documentation
shows (`bench/peers/celery_app.py`, `bench/peers/api.py`); both systems run on this machine
with the same Redis server, the same database engine for their records and the same worker
count, driven by one load tool (`bench/peers/load.py`) in the same run.
"""
