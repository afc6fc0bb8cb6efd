"""Container tasks: `docker_image` + `command` run by a worker through the podman CLI.

`settings` (what the operator sets), `command` (the `podman run` line: limits, no network,
no host mounts), `runner` (runs one container, captures its output, stops it on cancel
and timeout), `probe` (can this node run containers at all?), `image` (the tiny local
busybox image the probe and the tests use), `task` (the `container` task type).
"""
