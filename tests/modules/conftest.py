"""The modules import the project's module_utils as Ansible does on a host: under ansible.module_utils."""

import pathlib

import ansible.module_utils

MODULE_UTILS = pathlib.Path(__file__).resolve().parents[2] / "module_utils"
ansible.module_utils.__path__.append(str(MODULE_UTILS))
