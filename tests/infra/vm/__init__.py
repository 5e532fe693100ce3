"""The nested-VM test tier: a QEMU guest with a full cgroup2 hierarchy (memory, pids, cpu),
for the limits this host cannot enforce. image.py builds the cached disk image, vm.py boots
and drives it, fixtures.py offers it to pytest."""
