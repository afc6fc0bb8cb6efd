"""The chaos suite: faults injected into a real Grey cluster on this machine, judged from outside.

`python -m loadtest.chaos [--size small|full]` (`make chaos`); see `loadtest.chaos.suite`.
"""
