"""Container runtime: building blocks the helper runs in the host and in the container's
namespaces (mounts, /dev, id maps, capabilities, seccomp, cgroups, the sync socketpair).

Kept empty: the helper imports only the submodules a container needs.
"""
