"""Observing the host, possibly from inside a container.

In Docker Compose the sampler runs with ``pid: host`` but its own network and mount
namespaces; the host's ``/proc``, ``/sys`` and ``/`` are bind-mounted and named by
``PERFWATCH_HOST_PROC``, ``PERFWATCH_HOST_SYS`` and ``PERFWATCH_HOST_ROOT``. Unset (running
directly on a machine) they default to ``/proc``, ``/sys`` and ``/`` (``paths.py``).

Because the network namespace is the container's, ``/proc/net/*`` would describe the container:
interface counters (``net.py``) and socket states (``sockets.py``) are read from
``{proc}/1/net/*`` instead (pid 1 is the host's init, in the host's network namespace).
Filesystems come from ``{proc}/1/mounts`` and ``os.statvfs(host_root + mountpoint)``
(``mounts.py``); the host's users and distribution from its ``/etc`` (``etc.py``). Small parsers
read those files directly (``files.py``), which is also far cheaper than
``psutil.net_connections`` (a scan of every process's descriptors).

Every reader degrades to an empty result when a file cannot be read; none raises.
"""
