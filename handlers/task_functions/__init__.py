"""Task functions: what workers run (registered with `@task_function`), apart from API handlers."""

from handlers.task_functions import agents as agents
from handlers.task_functions import builtin as builtin
from runtime.execution.serving import tasks as serving_tasks  # noqa: F401  (gswarm.deploy, gswarm.undeploy)
