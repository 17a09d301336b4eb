"""Launcher: the single-threaded process that forks shims, containers, execs and sandboxes."""
