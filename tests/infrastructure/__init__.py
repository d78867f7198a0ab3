"""Real processes and servers: the command line, faults, several processes, deployment."""
