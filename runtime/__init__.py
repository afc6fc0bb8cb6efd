"""Grey's plumbing: app assembly, transports, auth, errors, store, execution runtime, CLI."""

import warnings

# connexion imports starlette.testclient at import time; Starlette then warns about httpx on
# every start. It concerns connexion's test helper, which Grey does not use.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
