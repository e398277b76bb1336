"""`podman exec` with pipelining: the connection the lab and Molecule use to reach their containers.

The containers.podman collection's podman connection runs each module in three or four `podman exec`
calls (make a temporary directory, set its modes, run the module, remove the directory), because it starts
`podman exec` without `--interactive` and so cannot hand a module to the container's Python on stdin.
This plugin is that connection with stdin attached when Ansible has data to send: a module is piped to
Python in one `podman exec`, as the ssh connection does with `pipelining = true` in production. Files
(`template`, `copy`) still go through the container's mounted filesystem or `podman cp`.

It is found under the short name `podman` (ansible.cfg's connection_plugins and Molecule's
ANSIBLE_CONNECTION_PLUGINS put this directory first), which is the name the Molecule podman driver writes
into its inventories; tests/test_connection.py checks that this plugin, not the collection's, is the one
loaded.
"""

from __future__ import annotations

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import (
    Connection as CollectionPodmanConnection,
)

DOCUMENTATION = """
    name: podman
    short_description: Run tasks in a podman container, one podman exec per module (pipelined)
    description:
        - The containers.podman.podman connection with pipelining; see the module docstring.
    author: GRIMBOTS toolkit
    options:
      remote_addr:
        description: Name or ID of the container.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      remote_user:
        description: User to run commands as inside the container.
        ini:
          - section: defaults
            key: remote_user
        env:
          - name: ANSIBLE_REMOTE_USER
        vars:
          - name: ansible_user
      podman_extra_args:
        description: Extra arguments to the podman command line.
        default: ''
        ini:
          - section: defaults
            key: podman_extra_args
        vars:
          - name: ansible_podman_extra_args
        env:
          - name: ANSIBLE_PODMAN_EXTRA_ARGS
      podman_executable:
        description: The podman executable.
        default: podman
        vars:
          - name: ansible_podman_executable
        env:
          - name: ANSIBLE_PODMAN_EXECUTABLE
      pipelining:
        description: Pipe modules to the container's Python on stdin instead of copying them in.
        default: true
        type: boolean
        env:
          - name: ANSIBLE_PIPELINING
        ini:
          - section: connection
            key: pipelining
        vars:
          - name: ansible_pipelining
"""


class Connection(CollectionPodmanConnection):
    """The collection's podman connection, with stdin attached when Ansible pipes a module in."""

    transport = "podman"
    has_pipelining = True

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        # ConnectionBase.exec_command only records the call; the collection's override would start
        # `podman exec` without --interactive, so its stdin would be closed before the module arrived.
        super(CollectionPodmanConnection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec"]
        if in_data is not None:
            args.append("--interactive")
        if self.user:
            args.extend(("--user", self.user))
        return self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)
