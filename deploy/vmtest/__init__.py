"""deploy/vm-test: the Vagrant cluster of deploy/, rebuilt offline under qemu and checked end to end.

    image.py    host packages, the wheelhouse, the cached Debian 12 base image (debootstrap)
    machines.py the network namespace, the qemu VMs and their monitors, all undone on exit
    checks.py   what a user of the cluster would check, through kubectl from the host side
    main.py     the phases in order, timed, with cleanup on failure and on ctrl-C
    guest/      what runs inside a VM at boot: mount the share, then the deploy/provision scripts
"""
