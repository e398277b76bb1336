"""Ansible's linear strategy over Mitogen: the strategy every playbook of the toolkit runs with.

Mitogen (the `mitogen` package pinned in requirements.txt) starts one Python interpreter per host and
runs every module in it, instead of one process (`podman exec`, or ssh with pipelining) per module. The
tasks, their order and their results are those of Ansible's `linear` strategy; only the transport of
modules changes. A converge of the full lab that changes nothing takes about a third of the time
(docs/lab.md).

Under Mitogen, the `podman` and `ssh` connections are Mitogen's own; the toolkit's pipelined `podman`
connection (plugins/connection/podman.py) is the one used without it. To run without Mitogen:
`ANSIBLE_STRATEGY=linear ansible-playbook ...`.

ansible.cfg (`strategy_plugins`, `strategy`) and Molecule's base configuration put this directory first.
"""

from __future__ import annotations

import ansible_mitogen.loaders
import ansible_mitogen.strategy

_Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
    """The linear strategy with Mitogen's connection and module runner mixed in."""
